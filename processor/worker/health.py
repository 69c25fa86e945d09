"""``/healthz``, ``/readyz`` and ``/metrics`` on a small asyncio HTTP server.

Semantics follow the controller-runtime handler upstream uses: 200 ``ok`` when every check passes,
500 with one ``[-]name failed: reason`` line per failing check otherwise, and a single check at
``/healthz/<name>`` or ``/readyz/<name>``. ``/metrics`` serves the worker's Prometheus registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from processor.metrics import Metrics

log = logging.getLogger(__name__)

#: A check returns "" when healthy, otherwise the reason it is not.
Check = Callable[[], str]


class HealthServer:
    """Serves health, readiness and metrics.

    Args:
        addr: ``HOST:PORT`` (port 0 picks a free one, see :attr:`port`).
        metrics: the registry behind ``/metrics``.
        health: liveness checks by name.
        ready: readiness checks by name (the liveness checks are included).
    """

    def __init__(
        self, addr: str, metrics: Metrics, health: dict[str, Check], ready: dict[str, Check]
    ) -> None:
        host, _, port = addr.rpartition(":")
        self.host = host or "0.0.0.0"
        self.port = int(port)
        self.metrics = metrics
        self.health = dict(health)
        self.ready = {**self.health, **ready}
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; :attr:`port` holds the bound port afterwards."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health and metrics on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """The (status, content type, body) for a GET of ``path``."""
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render()
        for prefix, checks in (("/healthz", self.health), ("/readyz", self.ready)):
            if path == prefix:
                return _run(checks)
            if path.startswith(prefix + "/"):
                name = path[len(prefix) + 1 :]
                if name not in checks:
                    return 404, "text/plain", f"no check {name!r}\n".encode()
                return _run({name: checks[name]})
        return 404, "text/plain", b"not found\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
            else:
                status, ctype, body = self.respond(parts[1])
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (body if parts and parts[0] == "GET" else b""))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


def _run(checks: dict[str, Check]) -> tuple[int, str, bytes]:
    failed = []
    lines = []
    for name, check in checks.items():
        try:
            reason = check()
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
        if reason:
            failed.append(name)
            lines.append(f"[-]{name} failed: {reason}")
        else:
            lines.append(f"[+]{name} ok")
    if failed:
        return 500, "text/plain", ("\n".join(lines) + "\nhealthz check failed\n").encode()
    return 200, "text/plain", b"ok\n"
