"""An in-memory sink for pipeline tests (the quix-streams ``ListSink`` idea).

Rows are kept per table in insertion order; insert deduplication tokens are honoured per table
like ClickHouse does, and the sink can be told to fail the next N inserts to exercise the
pipeline's retry path. It runs no SQL. Thread-safe: the pipeline inserts from its sink thread
while a test reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from processor.sink.base import DEFAULT_DATABASE, JSON_COLUMNS, SinkError, check_token, json_column

log = logging.getLogger(__name__)


class MemorySink:
    """Lists of rows per table.

    Args:
        database: only reported (there is no SQL).
        tables: table -> JSON column; defaults to the upstream tables.
    """

    name = "memory"

    def __init__(
        self, *, database: str = DEFAULT_DATABASE, tables: Mapping[str, str] | None = None
    ) -> None:
        self.database = database
        self.tables = dict(tables or JSON_COLUMNS)
        self._rows: dict[str, list[bytes]] = {t: [] for t in self.tables}
        self._tokens: dict[str, set[str]] = {t: set() for t in self.tables}
        self._lock = threading.Lock()
        self._fail = 0
        self._fail_retriable = True
        self.inserts = 0
        self.duplicates = 0
        self.failures = 0
        self.closed = False

    def fail_next(self, count: int, *, retriable: bool = True) -> None:
        """Make the next ``count`` inserts raise :class:`SinkError` (storing nothing)."""
        with self._lock:
            self._fail = count
            self._fail_retriable = retriable

    def rows(self, table: str) -> list[bytes]:
        """A copy of the rows stored in ``table``, in insertion order."""
        with self._lock:
            return list(self._rows[table])

    def open(self) -> None:
        """Nothing to connect to; reopens a closed sink."""
        self.closed = False

    def insert(self, table: str, rows: Sequence[bytes], token: str) -> None:
        """Append ``rows`` to ``table`` unless ``token`` was seen before (see :class:`Sink`)."""
        json_column(self.tables, table)
        check_token(token)
        with self._lock:
            if self.closed:
                raise SinkError("memory sink is closed")
            if self._fail > 0:
                self._fail -= 1
                self.failures += 1
                raise SinkError("injected insert failure", retriable=self._fail_retriable)
            if token in self._tokens[table]:
                self.duplicates += 1
                log.debug("insert into %s with a known token ignored", table)
                return
            self._tokens[table].add(token)
            self._rows[table].extend(bytes(r) for r in rows)
            self.inserts += 1

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Not supported: the memory sink runs no SQL."""
        raise SinkError("the memory sink runs no SQL; use chdb:// for queries")

    def execute(self, sql: str) -> None:
        """Not supported: the memory sink runs no SQL."""
        raise SinkError("the memory sink runs no SQL; use chdb:// for statements")

    def close(self) -> None:
        """Mark the sink closed (rows stay readable)."""
        self.closed = True
