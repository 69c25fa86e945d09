"""Health server: controller-runtime style checks and the metrics endpoint, over real HTTP."""

from __future__ import annotations

import asyncio

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
