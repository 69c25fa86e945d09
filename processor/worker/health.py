"""``/healthz``, ``/readyz`` and ``/metrics`` on a small asyncio HTTP server.

Semantics follow the controller-runtime handler upstream uses: 200 ``ok`` when every check passes,
500 with one ``[-]name failed: reason`` line per failing check otherwise, and a single check at
``/healthz/<name>`` or ``/readyz/<name>``. ``/metrics`` serves the worker's Prometheus registry.

The server reads one request per connection and answers with ``Connection: close``. Whatever can
reach the port may talk to it, so the request head is bounded and a request the server cannot
serve gets a 4xx, never an exception in the log:

- a request line over :data:`MAX_LINE` bytes: 414; a header line over it, more than
  :data:`MAX_HEADERS` header fields or a head over :data:`MAX_HEAD` bytes: 431;
- a request line that is not ``METHOD TARGET HTTP/1.x`` in printable ASCII, a malformed header
  field or a connection closed mid-head: 400; an HTTP major version other than 1: 505;
- a method other than GET and HEAD: 405 (with ``Allow``).

A client that sends no complete head within ``request_timeout`` seconds, or that closes without
sending anything, is disconnected without an answer. After answering, what the client still sends
(a request body, the rest of an oversized line) is read and dropped for a moment before closing,
so the client receives the answer instead of a connection reset. At most
:data:`MAX_CONNECTIONS` connections are served at once; more are closed at once (file descriptors
are the worker's). Rejections are logged at DEBUG only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable

from processor.metrics import Metrics

log = logging.getLogger(__name__)

#: A check returns "" when healthy, otherwise the reason it is not.
Check = Callable[[], str]

MAX_LINE = 8 * 1024  # bytes of the request line or of one header line, CRLF included
MAX_HEADERS = 100
MAX_HEAD = 32 * 1024  # bytes of the request line and the header fields together
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT = 5.0  # seconds to receive the request head, and to send the answer
LINGER_SECONDS = 1.0  # reading what the client still sends after the answer
LINGER_BYTES = 1024 * 1024

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/(\d)\.\d")
_END = (b"\r\n", b"\n")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    505: "HTTP Version Not Supported",
}


class _Reject(Exception):
    """A request answered with ``status`` and the message, without running anything."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HealthServer:
    """Serves health, readiness and metrics.

    Args:
        addr: ``HOST:PORT`` (port 0 picks a free one, see :attr:`port`).
        metrics: the registry behind ``/metrics``.
        health: liveness checks by name.
        ready: readiness checks by name (the liveness checks are included).
        refresh: called before ``/metrics`` is rendered, to update gauges that are cheap to
            compute on demand (its result is ignored).
        request_timeout: seconds a client has to send its request head (and to take the answer).
    """

    def __init__(
        self,
        addr: str,
        metrics: Metrics,
        health: dict[str, Check],
        ready: dict[str, Check],
        refresh: Callable[[], object] | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        host, _, port = addr.rpartition(":")
        self.host = host or "0.0.0.0"
        self.port = int(port)
        self.metrics = metrics
        self.health = dict(health)
        self.ready = {**self.health, **ready}
        self.refresh = refresh
        self.request_timeout = request_timeout
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def start(self) -> None:
        """Listen; :attr:`port` holds the bound port afterwards."""
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=MAX_LINE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health and metrics on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening, close the connections still open and wait for their handlers."""
        if self._server is None:
            return
        self._server.close()
        for writer in self._connections.values():
            writer.close()  # a handler waiting for input sees the end of it and returns
        tasks = list(self._connections)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=LINGER_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def respond(self, path: str) -> tuple[int, str, bytes]:
        """The (status, content type, body) for a GET of ``path``."""
        path = path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/metrics":
            if self.refresh is not None:
                self.refresh()
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

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The handler is a task of our own rather than asyncio's: on Python 3.11 a cancelled
        # client_connected_cb task makes asyncio log "Exception in callback" at shutdown.
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.transport.abort()
            return
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._connections[task] = writer
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._connections.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("health connection failed", exc_info=exc)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self.request_timeout):
                answer = await self._answer(reader)
            if answer is None:
                return
            async with asyncio.timeout(self.request_timeout):
                writer.write(answer)
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
            await _linger(reader)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> bytes | None:
        """The whole response to the request on ``reader`` (None: the client sent nothing)."""
        try:
            request = await _read_head(reader)
        except _Reject as exc:
            log.debug("health request rejected with %d: %s", exc.status, exc)
            return _response(exc.status, "text/plain", f"{exc}\n".encode())
        if request is None:
            return None
        method, target = request
        if method not in ("GET", "HEAD"):
            log.debug("health request rejected with 405: method %s", method)
            allow = "Allow: GET, HEAD\r\n"
            return _response(405, "text/plain", b"method not allowed\n", extra=allow)
        try:
            status, ctype, body = self.respond(target)
        except Exception:  # a bug here, not the client's doing: say so and keep serving
            log.exception("health endpoint %s failed", target)
            status, ctype, body = 500, "text/plain", b"internal error\n"
        return _response(status, ctype, body, head_only=method == "HEAD")


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """The method and target of the request (None: closed before sending anything).

    Raises:
        _Reject: the request cannot be served; the status says why.
    """
    line = await _line(reader, 414)
    if line in _END:  # RFC 9112 §2.2: an empty line before the request line is ignored
        line = await _line(reader, 414)
    if not line:
        return None
    method, target = _request_line(line)
    size, count = len(line), 0
    while True:
        field = await _line(reader, 431)
        if field in _END:
            return method, target
        if not field:
            raise _Reject(400, "connection closed in the request head")
        count += 1
        size += len(field)
        if count > MAX_HEADERS:
            raise _Reject(431, f"more than {MAX_HEADERS} header fields")
        if size > MAX_HEAD:
            raise _Reject(431, f"request head over {MAX_HEAD} bytes")
        name, colon, _ = field.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise _Reject(400, "malformed header field")


async def _line(reader: asyncio.StreamReader, too_long: int) -> bytes:
    """One line with its end; b"" when the client closed before sending any of it."""
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        what = "request line" if too_long == 414 else "header line"
        raise _Reject(too_long, f"{what} over {MAX_LINE} bytes") from None
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise _Reject(400, "connection closed in the request head") from None
        return b""


def _request_line(line: bytes) -> tuple[str, str]:
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3:
        raise _Reject(400, "malformed request line")
    method, target, version = parts
    matched = _VERSION.fullmatch(version)
    if not _TOKEN.fullmatch(method) or not _TARGET.fullmatch(target) or matched is None:
        raise _Reject(400, "malformed request line")
    if matched[1] != b"1":
        raise _Reject(505, "only HTTP/1.x is served")
    return method.decode("ascii"), target.decode("ascii")  # ASCII: the patterns say so


def _response(
    status: int, ctype: str, body: bytes, *, extra: str = "", head_only: bool = False
) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + (b"" if head_only else body)


async def _linger(reader: asyncio.StreamReader) -> None:
    """Drop what the client still sends, until it closes (bounded in time and bytes).

    Closing a socket with unread received data resets the connection, and the client may then
    lose the answer it has not read yet (a 405 to a POST with a body, a 414 to a long line).
    """
    left = LINGER_BYTES
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(LINGER_SECONDS):
            while left > 0:
                chunk = await reader.read(min(left, 64 * 1024))
                if not chunk:
                    return
                left -= len(chunk)


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
