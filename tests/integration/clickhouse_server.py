"""A throwaway Debian ``clickhouse-server`` (18.16) for native-protocol tests.

It runs in a temporary directory with its own config XML on free loopback ports, logs to the
console which a thread drains into ``server.log``; ``stop()`` then ``start()`` brings it back on the
same ports and data directory (fault tests stop it mid-stream).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from processor.bench.local import free_port

CANDIDATES = ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server")

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp_port}</tcp_port>
  <http_port>{http_port}</http_port>
  <path>{data}/</path>
  <tmp_path>{data}/tmp/</tmp_path>
  <user_files_path>{data}/user_files/</user_files_path>
  <format_schema_path>{data}/format_schemas/</format_schema_path>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <max_concurrent_queries>20</max_concurrent_queries>
  <timezone>UTC</timezone>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
  <users><default>
    <password></password>
    <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota>
  </default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"""


def clickhouse_server_binary() -> str | None:
    """The clickhouse-server executable, or None if it is not installed."""
    found = shutil.which("clickhouse-server")
    if found:
        return found
    return next((c for c in CANDIDATES if os.access(c, os.X_OK)), None)


class ClickHouseServer:
    """One clickhouse-server process rooted at ``root``."""

    def __init__(self, root: Path, binary: str | None = None) -> None:
        found = binary or clickhouse_server_binary()
        if found is None:
            raise FileNotFoundError("clickhouse-server is not installed")
        self.binary = found
        self.root = root
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.log_path = root / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._drain: threading.Thread | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        (root / "users.xml").write_text(_USERS)
        (root / "config.xml").write_text(
            _CONFIG.format(
                tcp_port=self.tcp_port, http_port=self.http_port, data=root / "data", root=root
            )
        )

    @property
    def url(self) -> str:
        """``clickhouse://`` URL without a database (the sink's ``database`` argument applies)."""
        return f"clickhouse://default@127.0.0.1:{self.tcp_port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until its native port accepts connections."""
        if self.running:
            return
        self._proc = subprocess.Popen(
            [self.binary, f"--config-file={self.root / 'config.xml'}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        assert self._proc.stdout is not None
        self._drain = threading.Thread(target=self._drain_log, args=(self._proc.stdout,))
        self._drain.daemon = True
        self._drain.start()
        deadline = time.monotonic() + timeout
        while not self._accepts():
            if self._proc.poll() is not None:
                raise RuntimeError(f"clickhouse-server exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"clickhouse-server not ready in {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``) and wait for the port."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._drain is not None:
            self._drain.join(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def _accepts(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5),
        ):
            return True
        return False

    def _drain_log(self, stream: IO[bytes]) -> None:
        with open(self.log_path, "ab") as out:
            for line in iter(stream.readline, b""):
                out.write(line)
                out.flush()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the server log."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ClickHouseServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
