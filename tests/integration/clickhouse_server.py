"""A throwaway Debian ``clickhouse-server`` (18.16) for native-protocol tests.

It runs in a temporary directory with its own config XML on free loopback ports, logs to the
console, which goes to ``server.log``; ``stop()`` then ``start()`` brings it back on the
same ports and data directory (fault tests stop it mid-stream).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

from processor.bench.local import free_port
from processor.childproc import ChildServer

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


class ClickHouseServer(ChildServer):
    """One clickhouse-server process rooted at ``root`` (the lifecycle is ChildServer's)."""

    name = "clickhouse-server"
    error = RuntimeError
    poll_interval = 0.1
    start_timeout = 30.0
    stop_timeout = 30.0

    def __init__(self, root: Path, binary: str | None = None) -> None:
        found = binary or clickhouse_server_binary()
        if found is None:
            raise FileNotFoundError("clickhouse-server is not installed")
        super().__init__(port=free_port(), log_file=root / "server.log")
        self.binary = found
        self.root = root
        self.cwd = root
        self.http_port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        (root / "users.xml").write_text(_USERS)
        (root / "config.xml").write_text(
            _CONFIG.format(
                tcp_port=self.tcp_port, http_port=self.http_port, data=root / "data", root=root
            )
        )

    @property
    def tcp_port(self) -> int:
        """The native-protocol port."""
        return self.port

    @property
    def url(self) -> str:
        """``clickhouse://`` URL without a database (the sink's ``database`` argument applies)."""
        return f"clickhouse://default@127.0.0.1:{self.tcp_port}"

    @property
    def address(self) -> str:
        """The URL: what ``start`` returns."""
        return self.url

    def _command(self) -> list[str]:
        return [self.binary, f"--config-file={self.root / 'config.xml'}"]

    def _ready(self) -> bool:
        """The native port accepts connections."""
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5),
        ):
            return True
        return False

    def _failure_detail(self) -> str:
        return ":\n" + self.log_tail(40)
