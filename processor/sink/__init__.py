"""Storage sinks: ClickHouse server (clickhouse-driver), chDB (embedded) and memory (tests).

Open one with :func:`open_sink` (``chdb://``, ``clickhouse://``, ``memory://``), create the
tables with :func:`~processor.sink.migrate.migrate`; the contract is :class:`Sink` in
:mod:`processor.sink.base` (which also documents the deduplication design).
"""

from processor.sink.base import JSON_COLUMNS, TABLES, Sink, SinkError
from processor.sink.factory import default_data_dir, open_sink

__all__ = ["JSON_COLUMNS", "TABLES", "Sink", "SinkError", "default_data_dir", "open_sink"]
