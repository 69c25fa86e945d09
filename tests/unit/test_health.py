"""Health server: controller-runtime style checks and the metrics endpoint, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from processor.metrics import Metrics
from processor.worker.health import HealthServer


def _server(state: dict[str, str]) -> HealthServer:
    return HealthServer(
        "127.0.0.1:0",
        Metrics(),
        health={"ping": lambda: "", "nats": lambda: state["nats"]},
        ready={"started": lambda: state["started"]},
    )


def test_checks_pass_and_fail():
    state = {"nats": "", "started": "starting"}
    server = _server(state)
    assert server.respond("/healthz") == (200, "text/plain", b"ok\n")
    status, _, body = server.respond("/readyz")
    assert status == 500
    assert b"[-]started failed: starting" in body
    assert b"[+]nats ok" in body
    state["started"] = ""
    assert server.respond("/readyz")[0] == 200
    state["nats"] = "not connected to NATS"
    assert server.respond("/healthz/nats")[0] == 500
    assert server.respond("/healthz/ping")[0] == 200
    assert server.respond("/healthz/nope")[0] == 404
    assert server.respond("/other")[0] == 404


def test_a_crashing_check_fails():
    def boom() -> str:
        raise RuntimeError("kaput")

    server = HealthServer("127.0.0.1:0", Metrics(), health={"x": boom}, ready={})
    status, _, body = server.respond("/healthz")
    assert status == 500
    assert b"[-]x failed: kaput" in body


async def _get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_served_over_http():
    async def main() -> None:
        server = _server({"nats": "", "started": ""})
        server.metrics.messages_published.inc(3)
        await server.start()
        try:
            assert server.port > 0
            assert await _get(server.port, "/healthz") == (200, b"ok\n")
            status, body = await _get(server.port, "/metrics")
            assert status == 200
            assert b"activity_processor_nats_messages_published_total 3.0" in body
        finally:
            await server.stop()

    asyncio.run(main())


# --- hostile clients: a 4xx or a quiet close, never an exception -------------------------------


class _Recorder:
    """The loop's exception handler: records what asyncio would log as unhandled."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        self.calls.append(context)


def _hostile(body, caplog, **kwargs) -> None:
    """Run ``body(server)`` against a served HealthServer; assert no failure was logged."""
    recorder = _Recorder()

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(recorder)
        server = HealthServer(
            "127.0.0.1:0", Metrics(), health={"ping": lambda: ""}, ready={}, **kwargs
        )
        await server.start()
        try:
            await body(server)
            assert await _get(server.port, "/healthz") == (200, b"ok\n")  # still serving
        finally:
            await server.stop()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    assert recorder.calls == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []


async def _exchange(port: int, data: bytes, *, eof: bool = True) -> bytes:
    """Send ``data`` (then end the sending side) and read the answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if eof:
        writer.write_eof()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return answer


def _status(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("eof", [True, False])
def test_an_oversized_request_line_gets_414(caplog, eof):
    async def body(server: HealthServer) -> None:
        line = b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = await _exchange(server.port, line, eof=eof)
        assert _status(answer) == b"HTTP/1.1 414 URI Too Long"
        assert answer.endswith(b"request line over 8192 bytes\n")

    _hostile(body, caplog)


def test_too_many_or_too_long_header_fields_get_431(caplog):
    async def body(server: HealthServer) -> None:
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
        answer = await _exchange(server.port, b"GET /healthz HTTP/1.1\r\n" + many + b"\r\n")
        assert _status(answer) == b"HTTP/1.1 431 Request Header Fields Too Large"
        long = b"Cookie: " + b"c" * 10_000 + b"\r\n"
        answer = await _exchange(server.port, b"GET /healthz HTTP/1.1\r\n" + long + b"\r\n")
        assert _status(answer) == b"HTTP/1.1 431 Request Header Fields Too Large"
        big = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(10))
        answer = await _exchange(server.port, b"GET /healthz HTTP/1.1\r\n" + big + b"\r\n")
        assert _status(answer) == b"HTTP/1.1 431 Request Header Fields Too Large"

    _hostile(body, caplog)


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,  # binary, first "line" ends at byte 10
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello, no line end
        b"\xff\xfe\x00garbage\x80\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\n\r\n",  # not ASCII
        b"GET /healthz\r\n\r\n",  # HTTP/0.9
        b"GET  /healthz HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1 extra\r\n\r\n",
        b"GET /healthz HTTX/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n folded: header\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",  # closed before the blank line
    ],
)
def test_malformed_requests_get_400(caplog, data):
    async def body(server: HealthServer) -> None:
        assert _status(await _exchange(server.port, data)) == b"HTTP/1.1 400 Bad Request"

    _hostile(body, caplog)


def test_other_http_versions_get_505(caplog):
    async def body(server: HealthServer) -> None:
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # HTTP/2 prior knowledge
        answer = await _exchange(server.port, preface)
        assert _status(answer) == b"HTTP/1.1 505 HTTP Version Not Supported"

    _hostile(body, caplog)


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS", b"BREW"])
def test_other_methods_get_405(caplog, method):
    async def body(server: HealthServer) -> None:
        request = method + b" /readyz HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
        answer = await _exchange(server.port, request, eof=False)
        assert _status(answer) == b"HTTP/1.1 405 Method Not Allowed"
        assert b"\r\nAllow: GET, HEAD\r\n" in answer

    _hostile(body, caplog)


def test_head_gets_no_body(caplog):
    async def body(server: HealthServer) -> None:
        answer = await _exchange(server.port, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert _status(answer) == b"HTTP/1.1 200 OK"
        assert answer.endswith(b"Content-Length: 3\r\nConnection: close\r\n\r\n")

    _hostile(body, caplog)


def test_silent_and_empty_connections_are_closed_quietly(caplog):
    async def body(server: HealthServer) -> None:
        assert await _exchange(server.port, b"") == b""  # connects, closes at once
        assert await _exchange(server.port, b"\r\n") == b""
        # connects and sends nothing: dropped after request_timeout, without an answer
        assert await _exchange(server.port, b"", eof=False) == b""
        assert await _exchange(server.port, b"GET /healthz HTTP/1.1\r\n", eof=False) == b""

    _hostile(body, caplog, request_timeout=0.2)


def test_stop_closes_idle_connections(caplog):
    async def body(server: HealthServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await asyncio.sleep(0.05)
        await server.stop()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        await server.start()

    _hostile(body, caplog)


def test_metrics_refresh_runs_before_rendering():
    metrics = Metrics()
    server = HealthServer(
        "127.0.0.1:0",
        metrics,
        health={},
        ready={},
        refresh=lambda: metrics.oldest_pending.set(42),
    )
    _, _, body = server.respond("/metrics")
    assert b"activity_processor_oldest_pending_seconds 42.0" in body
