"""The clickhouse-driver sink against a real (old: 18.16) clickhouse-server over native protocol.

18.16 has no DateTime64, JSONExtract or query parameters, so these tests use a table of types it
supports: ``activity_json String`` plus a column materialised with ``visitParamExtractString``.
"""

from __future__ import annotations

import orjson
import pytest

from processor.sink.base import SinkError
from processor.sink.clickhouse import ClickHouseSink
from processor.sink.factory import open_sink
from tests.integration.clickhouse_server import ClickHouseServer

pytestmark = pytest.mark.integration

TABLES = {"activities": "activity_json"}
DDL = (
    "CREATE TABLE IF NOT EXISTS {db}.activities (activity_json String, "
    "name String MATERIALIZED visitParamExtractString(activity_json, 'name'), "
    "summary String MATERIALIZED visitParamExtractString(activity_json, 'summary')) "
    "ENGINE = MergeTree() ORDER BY name"
)


def make_sink(server: ClickHouseServer, db: str) -> ClickHouseSink:
    sink = open_sink(server.url, database=db, tables=TABLES, send_receive_timeout=10.0)
    assert isinstance(sink, ClickHouseSink)
    sink.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    sink.execute(DDL.format(db=db))
    sink.open()
    return sink


def docs(start: int, count: int) -> list[bytes]:
    return [
        orjson.dumps({"name": f"act-{i:05d}", "summary": f'alice said "hi" é {i}'})
        for i in range(start, start + count)
    ]


def test_open_without_tables_says_to_migrate(clickhouse_server: ClickHouseServer):
    sink = open_sink(clickhouse_server.url, database="nothing_here")
    try:
        with pytest.raises(SinkError, match="activity migrate") as info:
            sink.open()
        assert not info.value.retriable
    finally:
        sink.close()


def test_columnar_batch_insert_with_lz4_and_query(clickhouse_server: ClickHouseServer):
    sink = make_sink(clickhouse_server, "batch")
    try:
        assert sink.server_version()[:2] == (18, 16)
        compressor = sink._client.connection.compressor_cls
        assert compressor is not None and "lz4" in compressor.__module__
        sink.insert("activities", docs(0, 5000), "tok-1")
        rows = sink.query(
            "SELECT count() AS n, uniqExact(name) AS u, min(name) AS first FROM batch.activities"
        )
        assert rows == [{"n": 5000, "u": 5000, "first": "act-00000"}]
        (row,) = sink.query("SELECT summary FROM batch.activities WHERE name = 'act-00007'")
        assert row == {"summary": 'alice said "hi" é 7'}
    finally:
        sink.close()


def test_old_server_rejects_query_parameters_clearly(clickhouse_server: ClickHouseServer):
    sink = make_sink(clickhouse_server, "params")
    try:
        with pytest.raises(SinkError, match="no query parameters") as info:
            sink.query("SELECT {x:String} AS x", {"x": "a'; DROP TABLE params.activities"})
        assert not info.value.retriable
    finally:
        sink.close()


def test_bad_sql_is_not_retriable(clickhouse_server: ClickHouseServer):
    sink = make_sink(clickhouse_server, "badsql")
    try:
        with pytest.raises(SinkError) as info:
            sink.query("SELECT no_such_column FROM badsql.activities")
        assert (info.value.retriable, info.value.code) == (False, 47)
    finally:
        sink.close()


@pytest.mark.slow
def test_server_down_is_retriable_and_the_sink_reconnects(
    fresh_clickhouse_server: ClickHouseServer,
):
    server = fresh_clickhouse_server
    sink = make_sink(server, "faults")
    try:
        sink.insert("activities", docs(0, 100), "a")
        server.stop()
        with pytest.raises(SinkError) as info:
            sink.insert("activities", docs(100, 100), "b")
        assert info.value.retriable, info.value
        with pytest.raises(SinkError) as info:
            sink.query("SELECT count() AS n FROM faults.activities")
        assert info.value.retriable
        server.start()
        sink.insert("activities", docs(100, 100), "b")  # the same sink, reconnected
        assert sink.query("SELECT count() AS n FROM faults.activities") == [{"n": 200}]
    finally:
        sink.close()
