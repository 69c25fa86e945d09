"""The in-memory sink: rows per table, dedup tokens, injected failures, URL factory."""

from __future__ import annotations

import pytest

from processor.sink.base import TABLES, SinkError, sql_string
from processor.sink.factory import default_data_dir, open_sink
from processor.sink.memory import MemorySink


def test_rows_are_kept_per_table_in_order():
    sink = MemorySink()
    sink.insert("activities", [b'{"a":1}', b'{"a":2}'], "t1")
    sink.insert("k8s_events", [b'{"e":1}'], "t1")  # tokens are per table
    sink.insert("activities", [b'{"a":3}'], "t2")
    assert sink.rows("activities") == [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    assert sink.rows("k8s_events") == [b'{"e":1}']
    assert sink.rows("audit_logs") == []


def test_same_token_twice_is_a_no_op():
    sink = MemorySink()
    sink.insert("activities", [b"1"], "tok")
    sink.insert("activities", [b"1"], "tok")
    assert sink.rows("activities") == [b"1"]
    assert (sink.inserts, sink.duplicates) == (1, 1)


def test_fail_next_raises_then_recovers_without_storing():
    sink = MemorySink()
    sink.fail_next(2)
    for _ in range(2):
        with pytest.raises(SinkError) as info:
            sink.insert("activities", [b"1"], "tok")
        assert info.value.retriable
    sink.insert("activities", [b"1"], "tok")  # the failed attempts did not consume the token
    assert sink.rows("activities") == [b"1"]
    assert sink.failures == 2


def test_fail_next_can_be_non_retriable():
    sink = MemorySink()
    sink.fail_next(1, retriable=False)
    with pytest.raises(SinkError) as info:
        sink.insert("audit_logs", [b"1"], "tok")
    assert not info.value.retriable


def test_unknown_table_and_bad_token_are_rejected():
    sink = MemorySink()
    with pytest.raises(SinkError, match="unknown table 'nope'"):
        sink.insert("nope", [b"1"], "tok")
    with pytest.raises(SinkError, match="invalid insert deduplication token"):
        sink.insert("activities", [b"1"], "x' OR 1")


def test_memory_sink_runs_no_sql():
    with pytest.raises(SinkError):
        MemorySink().query("SELECT 1")


def test_open_sink_schemes(tmp_path):
    assert open_sink("memory://").name == "memory"
    chdb = open_sink(f"chdb://{tmp_path}")
    assert (chdb.name, chdb.path) == ("chdb", str(tmp_path))  # type: ignore[attr-defined]
    assert chdb.defer_skip_indexes  # type: ignore[attr-defined]
    built = open_sink(f"chdb://{tmp_path}?defer_skip_indexes=0")
    assert (built.path, built.defer_skip_indexes) == (str(tmp_path), False)  # type: ignore[attr-defined]
    ch = open_sink("clickhouse://u:p%40ss@db.example:9440/events?compression=none&secure=1")
    assert (ch.name, ch.database, ch.port) == ("clickhouse", "events", 9440)  # type: ignore[attr-defined]
    assert open_sink("clickhouse://h", database="other").database == "other"
    assert set(TABLES) == set(open_sink("memory://").tables)  # type: ignore[attr-defined]


def test_open_sink_rejects_unknown_schemes_and_options():
    with pytest.raises(ValueError, match=r"chdb://, clickhouse://, memory://"):
        open_sink("postgres://localhost")
    with pytest.raises(ValueError, match="unknown clickhouse:// option"):
        open_sink("clickhouse://h?colour=red")
    with pytest.raises(ValueError, match="unknown chdb:// option"):
        open_sink("chdb:///tmp/x?colour=red")
    with pytest.raises(ValueError, match="not a boolean"):
        open_sink("chdb:///tmp/x?defer_skip_indexes=maybe")


def test_default_data_dir_reads_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("ACTIVITY_DATA_DIR")
    assert default_data_dir().parts[-3:] == (".local", "share", "activity")


def test_sql_string_escapes_quotes_and_backslashes():
    assert sql_string("a'b\\c") == "'a\\'b\\\\c'"
