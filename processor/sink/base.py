"""The storage sink contract shared by the chDB, ClickHouse-server and in-memory sinks.

A sink stores JSON documents in the upstream tables (``activities``, ``audit_logs``,
``k8s_events``): each table has one JSON string column and every other column is ``MATERIALIZED``
from it by ClickHouse, so a writer only ever inserts that one column (see
``processor/sink/migrations``). Sinks are synchronous; the pipeline calls them from one dedicated
thread.

Deduplication (decision): a redelivered input must never show twice in query results. Two layers:

1. **Insert deduplication token.** The caller passes a token derived deterministically from the
   batch (same rows => same token). ClickHouse drops an insert whose token it has already seen in
   the table's deduplication window: replicated engines do it natively
   (``replicated_deduplication_window``); the single-node ``ReplacingMergeTree`` tables carry
   ``non_replicated_deduplication_window`` so the same works there. A retried batch (crash after
   the insert, before the ack) is therefore a no-op. The memory sink honours tokens the same way.
2. **ReplacingMergeTree on the upstream ORDER BY key**, which includes the record identity
   (``origin_id`` for activities, ``audit_id`` for audit logs, ``uid`` + ``last_timestamp`` for
   events). A duplicate that arrives in a *different* batch (other token, e.g. a redelivered
   message grouped with other messages) has the same key and collapses on merge; queries that
   must be exact read with ``FINAL`` (``SELECT ... FROM audit.activities FINAL``).

Error model: every failure is a :class:`SinkError`; ``retriable`` is true for outages (connection
refused or lost, timeouts, server overloaded or out of memory/disk) and false for bad data, bad
SQL or a missing table. An insert either commits the whole block or raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from processor.errors import ProcessorError

#: The upstream tables a sink writes, in the order ``activity migrate`` creates them.
TABLES = ("activities", "audit_logs", "k8s_events")

#: The JSON column of each table (the only column a writer supplies).
JSON_COLUMNS: dict[str, str] = {
    "activities": "activity_json",
    "audit_logs": "event_json",
    "k8s_events": "event_json",
}

DEFAULT_DATABASE = "audit"

#: Shown when the target tables do not exist.
MIGRATE_HINT = "run `activity migrate` (or start the worker with --migrate true) first"

#: ClickHouse error codes that mean "try again later" (outage, overload), not "bad request".
RETRIABLE_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY (e.g. replica in read-only mode)
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        285,  # TOO_FEW_LIVE_REPLICAS
        286,  # UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
        319,  # UNKNOWN_STATUS_OF_INSERT
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        473,  # DEADLOCK_AVOIDED
        999,  # KEEPER_EXCEPTION
        # the schema or the account, not the data: a dropped table or database, revoked grants
        60,  # UNKNOWN_TABLE
        81,  # UNKNOWN_DATABASE
        497,  # ACCESS_DENIED
        516,  # AUTHENTICATION_FAILED
        # the storage's files, not the data: a read-only, full or failing disk (an operator
        # repairs it; the same block then inserts fine)
        74,  # CANNOT_READ_FROM_FILE_DESCRIPTOR
        75,  # CANNOT_WRITE_TO_FILE_DESCRIPTOR
        76,  # CANNOT_OPEN_FILE
        77,  # CANNOT_CLOSE_FILE
        87,  # CANNOT_SEEK_THROUGH_FILE
        88,  # CANNOT_TRUNCATE_FILE
        172,  # CANNOT_CREATE_DIRECTORY
        204,  # CANNOT_FSYNC
        274,  # AIO_READ_ERROR
        275,  # AIO_WRITE_ERROR
        294,  # CANNOT_WRITE_TO_FILE
        586,  # CANNOT_CREATE_FILE
        641,  # CANNOT_APPEND_TO_FILE
    }
)

#: An operating-system error of the storage's files inside a generic one (1000 POCO_EXCEPTION,
#: 1001 STD_EXCEPTION): chDB reports a read-only data directory as ``Code: 1001 ...
#: filesystem error: in create_directories: Permission denied``.
_OS_ERROR = re.compile(
    r"filesystem error|Permission denied|Read-only file system|No space left on device|"
    r"Disk quota exceeded|Input/output error|Too many open files"
)

_CODE = re.compile(r"Code:\s*(\d+)")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:\-]{1,256}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SinkError(ProcessorError):
    """A storage operation failed.

    Attributes:
        retriable: true for outages (retry the same batch later), false for bad data or SQL.
        code: the ClickHouse error code when known, else None.
    """

    def __init__(self, message: str, *, retriable: bool = False, code: int | None = None):
        super().__init__(message)
        self.retriable = retriable
        self.code = code


@runtime_checkable
class Sink(Protocol):
    """What the pipeline, ``activity migrate`` and the query layer need from a storage backend.

    Every method may be called before :meth:`open`: the connection is made lazily, so
    ``migrate(sink)`` can create the tables that ``open`` then verifies. ``open`` is idempotent.
    """

    name: str
    database: str

    def open(self) -> None:
        """Connect and verify that the target tables exist (else a :class:`SinkError` that says
        to run ``activity migrate``)."""
        ...

    def insert(self, table: str, rows: Sequence[bytes], token: str) -> None:
        """Insert JSON documents into ``table``'s JSON column as one block.

        Args:
            table: one of :data:`TABLES` (or of the sink's own ``tables`` mapping).
            rows: one JSON document per row.
            token: deterministic insert deduplication token (same token twice => no-op).

        Raises:
            SinkError: nothing was stored (or the store is unknown: retry with the same token).
        """
        ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query with server-side typed parameters (``{name:Type}``) and return dict rows.

        Values are as the client decodes them: chDB yields JSON types (date-times as text in
        UTC, 64-bit integers as numbers), clickhouse-driver yields Python types (``datetime``,
        ``UUID``). Cast in SQL where a caller needs one representation on both.
        """
        ...

    def execute(self, sql: str) -> None:
        """Run one statement that returns nothing (DDL, ``INSERT ... SELECT``, ``OPTIMIZE``)."""
        ...

    def close(self) -> None:
        """Release the connection (idempotent)."""
        ...


def json_column(tables: Mapping[str, str], table: str) -> str:
    """The JSON column of ``table``; :class:`SinkError` (not retriable) for an unknown table."""
    try:
        return tables[table]
    except KeyError:
        known = ", ".join(sorted(tables))
        raise SinkError(f"unknown table {table!r} (known: {known})") from None


def check_token(token: str) -> str:
    """Validate an insert deduplication token (it is written into the SQL text as a literal)."""
    if not _TOKEN.match(token):
        raise SinkError(f"invalid insert deduplication token {token!r}: use [A-Za-z0-9_.:-]")
    return token


def check_identifier(name: str, what: str = "identifier") -> str:
    """Validate a database, table or column name before it is put into SQL text."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits and _")
    return name


def checked_tables(tables: Mapping[str, str]) -> dict[str, str]:
    """A table -> JSON column mapping whose names are all valid identifiers."""
    for table, column in tables.items():
        check_identifier(table, "table")
        check_identifier(column, "column")
    return dict(tables)


def sql_string(value: str) -> str:
    """``value`` as a single-quoted ClickHouse string literal (for DDL and bookkeeping only)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def is_retriable(code: int | None, text: str) -> bool:
    """Whether a ClickHouse error is an outage to retry, not bad data or SQL to give up on.

    A non-retriable insert error makes the pipeline dead-letter the rows, so anything the
    storage's environment causes (the codes of :data:`RETRIABLE_CODES`, an OS error of its
    files under any code) must be retriable: the data is fine and inserts once it is repaired.
    """
    return code in RETRIABLE_CODES or _OS_ERROR.search(text) is not None


def error_code(text: str) -> int | None:
    """The ``Code: NNN`` of a ClickHouse error message, or None."""
    match = _CODE.search(text)
    return int(match.group(1)) if match else None


def missing_tables_error(database: str, missing: Iterable[str]) -> SinkError:
    """The error :meth:`Sink.open` raises when target tables do not exist."""
    names = ", ".join(f"{database}.{t}" for t in missing)
    return SinkError(f"missing table(s) {names}: {MIGRATE_HINT}")
