"""The ClickHouse server sink: clickhouse-driver over the native protocol (port 9000).

One ``clickhouse_driver.Client`` with LZ4 block compression; inserts are columnar
(``columnar=True``: one ``String`` column of the JSON bytes, no per-row tuples) with the batch's
``insert_deduplication_token``. Query parameters are sent server-side (``server_side_params``):
``{name:Type}`` placeholders are bound by the server, never spliced into the SQL text; a server too
old for them (protocol revision < 54459, ClickHouse < 19.15) gets a clear non-retriable error.

Reconnects: the driver drops the connection after a network error and connects again on the next
call, so a failed insert raises ``SinkError(retriable=True)`` and the caller's retry of the same
batch (same token) reconnects. A failure after the server committed is absorbed by the token.
Servers older than 22.2 do not know ``insert_deduplication_token``; the sink then omits it (logged
once) and relies on the ReplacingMergeTree layer alone.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from clickhouse_driver import Client, errors

from processor.sink.base import (
    DEFAULT_DATABASE,
    JSON_COLUMNS,
    SinkError,
    check_identifier,
    check_token,
    checked_tables,
    is_retriable,
    json_column,
    missing_tables_error,
)

log = logging.getLogger(__name__)

#: First protocol revision with server-side query parameters (ClickHouse 19.15).
PARAMETERS_REVISION = 54459
#: First server version with ``insert_deduplication_token``.
TOKEN_VERSION = (22, 2)

_NETWORK_ERRORS = (
    errors.NetworkError,
    errors.SocketTimeoutError,
    errors.UnexpectedPacketFromServerError,
    EOFError,
    OSError,
    socket.timeout,
)


class ClickHouseSink:
    """Store into a ClickHouse server.

    Args:
        host, port, user, password: the native-protocol endpoint.
        database: the database holding the tables (connections use ``default`` so that
            ``activity migrate`` can create it).
        compression: ``"lz4"`` (default), ``"zstd"`` or ``None``/``""`` for none.
        secure: TLS.
        tables: table -> JSON column; defaults to the upstream tables.
        connect_timeout, send_receive_timeout: seconds.
        settings: extra ClickHouse settings for every query.
    """

    name = "clickhouse"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9000,
        *,
        user: str = "default",
        password: str = "",
        database: str = DEFAULT_DATABASE,
        compression: str | None = "lz4",
        secure: bool = False,
        tables: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        send_receive_timeout: float = 60.0,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.database = check_identifier(database, "database")
        self.tables = checked_tables(tables or JSON_COLUMNS)
        self.host, self.port = host, port
        self._client = Client(
            host=host,
            port=port,
            user=user,
            password=password,
            database="default",
            compression=compression or False,
            secure=secure,
            connect_timeout=connect_timeout,
            send_receive_timeout=send_receive_timeout,
            client_name="activity-processor",
            settings={**(settings or {}), "server_side_params": True},
        )
        self._token_warned = False

    def open(self) -> None:
        """Connect and verify the tables exist (see :class:`~.base.Sink`)."""
        # the database name is a checked identifier; no parameters here (old servers lack them)
        rows = self._call(
            f"SELECT name FROM system.tables WHERE database = '{self.database}'", None
        )
        existing = {r[0] for r in rows}
        missing = [t for t in self.tables if t not in existing]
        if missing:
            raise missing_tables_error(self.database, missing)
        log.info("ClickHouse %s:%d %s ready", self.host, self.port, self.server_version())

    def server_version(self) -> tuple[int, int, int]:
        """The connected server's (major, minor, patch); connects if needed."""
        self._call("SELECT 1", None)
        info = self._client.connection.server_info
        return (info.version_major, info.version_minor, info.version_patch)

    def insert(self, table: str, rows: Sequence[bytes], token: str) -> None:
        """Insert ``rows`` as one columnar block with a dedup token (see :class:`~.base.Sink`)."""
        column = json_column(self.tables, table)
        check_token(token)
        if not rows:
            return
        settings: dict[str, Any] = {}
        if self._supports_token():
            settings["insert_deduplication_token"] = token
        sql = f"INSERT INTO {self.database}.{table} ({column}) VALUES"
        self._call(sql, [list(rows)], columnar=True, settings=settings)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``sql`` with server-side parameters; rows as dicts (see :class:`~.base.Sink`)."""
        if params:
            self._call("SELECT 1", None)  # connect, so the server revision is known
            if self._client.connection.server_info.revision < PARAMETERS_REVISION:
                raise SinkError(
                    f"ClickHouse {self._version_text()} has no query parameters "
                    "({name:Type}); use ClickHouse >= 19.15"
                )
        result = self._call(sql, dict(params) if params else None, with_column_types=True)
        rows, columns = result
        names = [c[0] for c in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def execute(self, sql: str) -> None:
        """Run one statement (see :class:`~.base.Sink`)."""
        self._call(sql, None)

    def close(self) -> None:
        """Disconnect (the next call would connect again)."""
        self._client.disconnect()

    def _supports_token(self) -> bool:
        self._call("SELECT 1", None)
        info = self._client.connection.server_info
        if (info.version_major, info.version_minor) >= TOKEN_VERSION:
            return True
        if not self._token_warned:
            self._token_warned = True
            log.warning(
                "ClickHouse %s has no insert_deduplication_token: a retried batch may be stored "
                "twice until ReplacingMergeTree collapses it",
                self._version_text(),
            )
        return False

    def _version_text(self) -> str:
        info = self._client.connection.server_info
        return f"{info.version_major}.{info.version_minor}.{info.version_patch}"

    def _call(self, sql: str, params: Any, **kwargs: Any) -> Any:
        try:
            return self._client.execute(sql, params, **kwargs)
        except errors.ServerException as exc:
            raise _server_error(exc, sql) from exc
        except _NETWORK_ERRORS as exc:
            self._client.disconnect()
            raise SinkError(
                f"ClickHouse {self.host}:{self.port} unreachable: {exc}", retriable=True
            ) from exc
        except errors.Error as exc:
            raise SinkError(f"ClickHouse client error: {exc}", code=exc.code) from exc
        except (TypeError, ValueError) as exc:
            raise SinkError(f"cannot encode data for ClickHouse: {exc}") from exc


def _server_error(exc: errors.ServerException, sql: str) -> SinkError:
    code = exc.code
    first = str(exc.message).strip().splitlines()[0] if exc.message else str(exc)
    what = sql.split(None, 3)[:3]
    return SinkError(
        f"ClickHouse error {code} on {' '.join(what)}...: {first}",
        retriable=is_retriable(code, str(exc.message or exc)),
        code=code,
    )
