"""The bundled nats-server: start, stop, kill, restart with JetStream state kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats
import pytest

from processor.stream.server import NatsServer, NatsServerError, nats_server_binary

pytestmark = pytest.mark.integration


async def _publish(url: str, stream: str, count: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        for i in range(count):
            await js.publish(f"{stream.lower()}.x", b"m%d" % i)
    finally:
        await nc.drain()


async def _messages(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream)
        return int(info.state.messages)
    finally:
        await nc.drain()


def test_binary_is_found():
    assert Path(nats_server_binary()).is_file()


def test_start_stop_kill_restart_keep_jetstream_data(fresh_nats_server: NatsServer):
    server = fresh_nats_server
    url = server.url
    assert server.running and url == f"nats://127.0.0.1:{server.port}"
    assert server.start() == url  # already running: same server
    asyncio.run(_publish(url, "KEEP", 5))

    server.stop()
    assert not server.running
    assert server.restart() == url
    assert asyncio.run(_messages(url, "KEEP")) == 5

    server.kill()
    assert not server.running
    assert server.restart() == url
    assert asyncio.run(_messages(url, "KEEP")) == 5
    assert "Server is ready" in server.log_tail()


def test_context_manager_and_explicit_port(tmp_path: Path, require_nats: None):
    with NatsServer(tmp_path / "a") as first:
        assert first.running
        # a second server cannot take the same port: a clear error with the log
        with pytest.raises(NatsServerError, match="exited with code"):
            NatsServer(tmp_path / "b", port=first.port).start()
        port = first.port
    assert not first.running
    with NatsServer(tmp_path / "c", port=port) as second:
        assert second.url == f"nats://127.0.0.1:{port}"
    assert (tmp_path / "a" / "nats-server.log").is_file()


def test_port_unknown_before_start(tmp_path: Path):
    server = NatsServer(tmp_path / "x")
    with pytest.raises(NatsServerError, match="not started"):
        _ = server.url
    server.stop()  # a no-op on a server that never ran
    server.kill()
