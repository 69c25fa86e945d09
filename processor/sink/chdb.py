"""The embedded sink: chDB (the ClickHouse engine in-process), same SQL as a server.

chDB runs one embedded server per process, bound to one data directory; opening a second
directory while the first is open fails. Sinks on the same directory share one
``chdb.session.Session`` (reference-counted, serialised by a lock), so the worker, the demo and a
test can each hold a sink on it.

Inserts send ``INSERT INTO <db>.<table> (<json col>) SETTINGS insert_deduplication_token = '...'
FORMAT RowBinary`` followed by the rows as one ``String`` column (varint length + bytes: no
escaping, binary-safe) through ``Session.query`` as bytes. Measured on 10,000 Activity rows of 3 KB
into the migrated ``audit.activities`` (2 shared vCPU, best of 5, noisy): query + RowBinary 0.92 s,
query + LineAsString 1.13 s (needs newline-free rows), query + orjson JSONEachRow 1.34 s as bytes
and 2.47 s as str; Python-side preparation is 12 ms for RowBinary against 61 ms for the JSONEachRow
wrapping. ``Session.send_insert`` (streaming) was faster (0.67 s) but is not used: a block whose
MATERIALIZED columns fail (code 349) reported ``rows_written=1`` without raising and stored nothing
usable, which breaks "never partially succeeds silently".

Skip indexes are deferred to merges by default (``materialize_skip_indexes_on_insert = 0`` on every
insert, where the embedded engine knows the setting): the upstream tables carry bloom-filter and
set indexes whose building was more than half of an insert's CPU (900 bundled-policy activities:
99 ms -> 43 ms of CPU, median of 6). The embedded engine shares the worker's cores, and each
insert is a burst that delays the records being translated meanwhile. Merges build the indexes
(``materialize_skip_indexes_on_merge``, on by default), so only the newest, small parts are read
without them; results are the same, as skip indexes only prune. ``chdb://...?defer_skip_indexes=0``
builds them at insert time again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from processor.sink.base import (
    DEFAULT_DATABASE,
    JSON_COLUMNS,
    SinkError,
    check_identifier,
    check_token,
    checked_tables,
    error_code,
    is_retriable,
    json_column,
    missing_tables_error,
)

log = logging.getLogger(__name__)

#: The insert setting that leaves skip indexes to merges (ClickHouse 24.x and later).
DEFER_SKIP_INDEXES = "materialize_skip_indexes_on_insert"

#: Session settings: JSON output with 64-bit integers as numbers, date-times in UTC.
_SESSION_SETTINGS = (
    "SET output_format_json_quote_64bit_integers = 0",
    "SET session_timezone = 'UTC'",
)


class _Shared:
    """One chDB session on one directory, shared by every sink of this process on it."""

    lock = threading.Lock()  # guards the registry below
    sessions: dict[str, _Shared] = {}  # noqa: RUF012 (process-wide by nature of chDB)

    def __init__(self, path: str) -> None:
        from chdb import session as chdb_session

        self.path = path
        self.refs = 0
        self.query_lock = threading.Lock()
        self.session = chdb_session.Session(path)
        for statement in _SESSION_SETTINGS:
            self.session.query(statement)

    @classmethod
    def acquire(cls, path: str) -> _Shared:
        with cls.lock:
            shared = cls.sessions.get(path)
            if shared is None:
                others = ", ".join(cls.sessions)
                try:
                    shared = cls(path)
                except Exception as exc:
                    hint = f" (chDB allows one data directory per process; open: {others})"
                    raise SinkError(
                        f"cannot open chDB in {path}: {exc}{hint if others else ''}"
                    ) from exc
                cls.sessions[path] = shared
            shared.refs += 1
            return shared

    def release(self) -> None:
        with _Shared.lock:
            self.refs -= 1
            if self.refs == 0:
                del _Shared.sessions[self.path]
                self.session.close()


def rowbinary_strings(rows: Sequence[bytes]) -> bytes:
    """Encode ``rows`` as a RowBinary stream of one ``String`` column (varint length + bytes)."""
    out = bytearray()
    for row in rows:
        n = len(row)
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        out += row
    return bytes(out)


def is_store(path: str | Path) -> bool:
    """True when ``path`` holds a chDB store (its ``metadata`` directory)."""
    return (Path(path) / "metadata").is_dir()


class NoStoreError(SinkError):
    """A read-only sink found no chDB store where it was pointed (nothing was created)."""


class ChdbSink:
    """Store into chDB in ``path`` (a temporary directory, removed on close, when None).

    Args:
        path: the data directory (created if missing) or None for a temporary one.
        database: the database holding the tables.
        tables: table -> JSON column; defaults to the upstream tables.
        defer_skip_indexes: build skip indexes in merges instead of in each insert (see the
            module docstring); ignored by an engine without the setting.
        create: create the directory and the store when missing; False (the read-only
            commands) raises :class:`NoStoreError` instead, and creates nothing.
    """

    name = "chdb"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        database: str = DEFAULT_DATABASE,
        tables: Mapping[str, str] | None = None,
        defer_skip_indexes: bool = True,
        create: bool = True,
    ) -> None:
        self.database = check_identifier(database, "database")
        self.tables = checked_tables(tables or JSON_COLUMNS)
        self.defer_skip_indexes = defer_skip_indexes
        self._insert_settings: str | None = None  # known after the first insert
        self._temp = path is None
        self.create = create
        self.path = str(Path(path).resolve()) if path is not None else ""
        self._shared: _Shared | None = None

    def _connect(self) -> _Shared:
        if self._shared is None:
            if not self.create:
                self._check_store()
            if self._temp and not self.path:
                self.path = tempfile.mkdtemp(prefix="activity-chdb-")
            Path(self.path).mkdir(parents=True, exist_ok=True)
            self._shared = _Shared.acquire(self.path)
            log.info("chDB open in %s", self.path)
        return self._shared

    def _check_store(self) -> None:
        if self._temp:
            raise NoStoreError("no store: chdb:// without a directory is a new, empty store")
        if not is_store(self.path):
            raise NoStoreError(f"no store at {self.path}")

    def open(self) -> None:
        """Open the session and verify the tables exist (see :class:`~.base.Sink`)."""
        rows = self.query(
            "SELECT name FROM system.tables WHERE database = {db:String}", {"db": self.database}
        )
        existing = {r["name"] for r in rows}
        missing = [t for t in self.tables if t not in existing]
        if missing:
            raise missing_tables_error(self.database, missing)

    def insert(self, table: str, rows: Sequence[bytes], token: str) -> None:
        """Insert ``rows`` as one RowBinary block with a dedup token (see :class:`~.base.Sink`)."""
        column = json_column(self.tables, table)
        check_token(token)
        if not rows:
            return
        sql = (
            f"INSERT INTO {self.database}.{table} ({column}) "
            f"SETTINGS insert_deduplication_token = '{token}'{self._extra_settings()}"
        )
        data = sql.encode() + b" FORMAT RowBinary\n" + rowbinary_strings(rows)
        shared = self._connect()
        with shared.query_lock:
            try:
                shared.session.query(data, "Null")
            except Exception as exc:
                raise _sink_error(exc, f"insert of {len(rows)} rows into {table}") from exc

    def _extra_settings(self) -> str:
        """The insert settings after the dedup token (``, name = value`` ...), looked up once."""
        if self._insert_settings is None:
            extra = ""
            if self.defer_skip_indexes:
                known = self.query(
                    "SELECT count() AS n FROM system.settings WHERE name = {name:String}",
                    {"name": DEFER_SKIP_INDEXES},
                )
                if known[0]["n"]:
                    extra = f", {DEFER_SKIP_INDEXES} = 0"
            self._insert_settings = extra
        return self._insert_settings

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``sql`` with server-side parameters; rows as dicts (see :class:`~.base.Sink`)."""
        result = self._run(sql, "JSONEachRow", params)
        data = result.bytes()
        return [orjson.loads(line) for line in data.splitlines() if line]

    def execute(self, sql: str) -> None:
        """Run one statement (see :class:`~.base.Sink`)."""
        self._run(sql, "Null", None)

    def _run(self, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
        shared = self._connect()
        with shared.query_lock:
            try:
                if params:
                    return shared.session.query(sql, fmt, params=dict(params))
                return shared.session.query(sql, fmt)
            except Exception as exc:
                raise _sink_error(exc, "query") from exc

    def close(self) -> None:
        """Release the shared session; a temporary directory is removed."""
        if self._shared is not None:
            self._shared.release()
            self._shared = None
        if self._temp and self.path:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = ""


def _sink_error(exc: Exception, what: str) -> SinkError:
    text = str(exc)
    code = error_code(text)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return SinkError(f"chDB {what} failed: {first}", retriable=is_retriable(code, text), code=code)
