"""A server run as a child process on 127.0.0.1: the lifecycle the bundled servers share.

:class:`ChildServer` owns the port, the process, its log file, the start-and-wait-until-ready
loop and the stop (SIGTERM, SIGKILL on timeout) / kill; a subclass supplies its command line,
its readiness check and its address (:class:`processor.stream.server.NatsServer`,
:class:`processor.kafka.broker.TansuBroker`, the tests' ClickHouse server).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from processor.errors import ProcessorError

log = logging.getLogger(__name__)

__all__ = ["ChildServer"]


class ChildServer:
    """One server child process; usable as a context manager (starts on enter, stops on exit).

    Subclasses set :attr:`name` and :attr:`error` and implement :meth:`_command`,
    :meth:`_ready` and :attr:`address`; the other hooks have defaults.

    Attributes:
        log_file: where the process's stdout and stderr go, appended (None: discarded).
        cwd: the process's working directory (None: this process's).
    """

    name = "server"
    error: type[Exception] = ProcessorError
    poll_interval = 0.05
    start_timeout = 20.0
    stop_timeout = 10.0

    def __init__(self, *, port: int | None = None, log_file: Path | None = None) -> None:
        self.log_file = Path(log_file) if log_file else None
        self.cwd: Path | None = None
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- what a subclass supplies -------------------------------------------------------------
    @property
    def address(self) -> str:
        """What :meth:`start` returns: the URL or host:port clients use."""
        raise NotImplementedError

    def _command(self) -> list[str]:
        """The command line (called by :meth:`start`, after :meth:`_prepare`)."""
        raise NotImplementedError

    def _ready(self) -> bool:
        """Whether the started process serves clients (polled until true)."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Before the process starts (directories, config files, the port)."""

    def _env(self) -> dict[str, str] | None:
        """The child's environment (None: this process's)."""
        return None

    def _failure_detail(self) -> str:
        """Appended to the start-failure messages."""
        return ""

    # -- state ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The listener port (chosen at :meth:`start` when not given)."""
        if self._port is None:
            raise self.error(f"{self.name} has not started yet: its port is unknown")
        return self._port

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._proc.pid if self.running and self._proc else None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> str:
        """Start the process and wait until :meth:`_ready`; on a running one, return at once.

        Args:
            timeout: seconds to wait for readiness (None: :attr:`start_timeout`).

        Returns:
            :attr:`address`.

        Raises:
            error: the binary is missing, or the process exited or was not ready in time.
        """
        if self.running:
            return self.address
        self._prepare()
        cmd = self._command()
        out: IO[bytes] | int = subprocess.DEVNULL
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_file, "ab")  # noqa: SIM115 - open while the process runs
            out = self._log
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=self.cwd,
        )
        try:
            self._wait_ready(self.start_timeout if timeout is None else timeout)
        except BaseException:
            self.kill()
            raise
        log.info("%s pid %d listening on %s", self.name, self._proc.pid, self.address)
        return self.address

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self.error(
                    f"{self.name} exited with code {self._proc.returncode} while starting"
                    + self._failure_detail()
                )
            if self._ready():
                return
            time.sleep(self.poll_interval)
        raise self.error(
            f"{self.name} did not become ready within {timeout}s" + self._failure_detail()
        )

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM and wait (None: :attr:`stop_timeout`); SIGKILL on timeout."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s pid %d ignored SIGTERM: killing it", self.name, proc.pid)
                proc.kill()
                proc.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL and reap."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close_log()

    def restart(self, timeout: float | None = None) -> str:
        """Stop the process if it runs and start it again on the same port."""
        self.stop()
        return self.start(timeout)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 50) -> str:
        """The last ``n`` lines of :attr:`log_file`."""
        try:
            if self.log_file is None:
                raise OSError("no log file")
            lines = self.log_file.read_bytes().decode("utf-8", "replace").splitlines()
        except OSError:
            return f"(no {self.name} log)"
        return "\n".join(lines[-n:])

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
