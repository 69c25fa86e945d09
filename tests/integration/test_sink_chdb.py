"""chDB sink on the migrated upstream schema: materialised columns, dedup, FINAL, parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor.sink.base import SinkError
from processor.sink.chdb import ChdbSink, rowbinary_strings
from processor.sink.migrate import migrate

pytestmark = pytest.mark.integration

#: Yesterday: inside every table's TTL (60 days), whenever the tests run.
DAY = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def activity(n: int, *, summary: str = "", tenant: str = "acme") -> dict[str, Any]:
    return {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "Activity",
        "metadata": {
            "name": f"act-{n:012x}",
            "namespace": "default",
            "creationTimestamp": f"{DAY}T10:00:{n % 60:02d}.123Z",
        },
        "spec": {
            "summary": summary or f"alice created Deployment app-{n}",
            "changeSource": "human",
            "tenant": {"type": "Organization", "name": tenant},
            "actor": {"type": "user", "name": "alice@example.com", "uid": "u-1"},
            "resource": {"apiGroup": "apps", "kind": "Deployment", "name": f"app-{n}",
                         "namespace": "prod", "uid": f"uid-{n}"},
            "origin": {"type": "audit", "id": f"0b2c3d4e-0000-4000-8000-{n:012d}"},
        },
    }  # fmt: skip


def audit_event(n: int) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"0b2c3d4e-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "verb": "create",
        "user": {"username": "alice@example.com", "uid": "u-1"},
        "objectRef": {"resource": "deployments", "namespace": "prod", "name": f"app-{n}",
                      "apiGroup": "apps", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": f"{DAY}T10:00:00.123456Z",
        "stageTimestamp": f"{DAY}T10:00:00.223456Z",
        "annotations": {"platform.miloapis.com/scope.type": "Organization",
                        "platform.miloapis.com/scope.name": "acme"},
    }  # fmt: skip


def k8s_event(n: int, **extra: Any) -> dict[str, Any]:
    event = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"app.{n}", "namespace": "prod", "uid": f"ev-{n}",
                     "creationTimestamp": f"{DAY}T10:00:00Z",
                     "annotations": {"platform.miloapis.com/scope.type": "Project",
                                     "platform.miloapis.com/scope.name": "web"}},
        "eventTime": f"{DAY}T10:00:01.123456Z",
        "reportingController": "inventory-controller",
        "reportingInstance": "inventory-0",
        "action": "Reconcile",
        "reason": "Ready",
        "type": "Normal",
        "regarding": {"apiVersion": "inventory.miloapis.com/v1alpha1", "kind": "Machine",
                      "name": f"m-{n}", "namespace": "prod", "uid": f"m-uid-{n}"},
        "note": "machine is ready",
    }  # fmt: skip
    event.update(extra)
    return event


def rows(*docs: dict[str, Any]) -> list[bytes]:
    return [orjson.dumps(d) for d in docs]


def test_rowbinary_encoding_uses_varint_lengths():
    assert rowbinary_strings([b"ab", b"x" * 200]) == b"\x02ab" + b"\xc8\x01" + b"x" * 200


def test_activity_materialised_columns(chdb_sink: ChdbSink):
    chdb_sink.insert("activities", rows(activity(7, summary='said "hi" \\ é')), "t-act")
    (row,) = chdb_sink.query(
        "SELECT tenant_type, tenant_name, actor_name, summary, origin_id, api_group, "
        "resource_kind, change_source, toString(timestamp) AS ts FROM audit.activities"
    )
    assert row == {
        "tenant_type": "Organization",
        "tenant_name": "acme",
        "actor_name": "alice@example.com",
        "summary": 'said "hi" \\ é',
        "origin_id": "0b2c3d4e-0000-4000-8000-000000000007",
        "api_group": "apps",
        "resource_kind": "Deployment",
        "change_source": "human",
        "ts": f"{DAY} 10:00:07.123",
    }


def test_audit_log_materialised_columns(chdb_sink: ChdbSink):
    chdb_sink.insert("audit_logs", rows(audit_event(1), audit_event(2)), "t-audit")
    got = chdb_sink.query(
        "SELECT status_code, verb, user, scope_type, resource, toString(audit_id) AS id "
        "FROM audit.audit_logs ORDER BY id"
    )
    assert [r["status_code"] for r in got] == [201, 201]  # from a JSON number
    assert got[0] == {
        "status_code": 201,
        "verb": "create",
        "user": "alice@example.com",
        "scope_type": "Organization",
        "resource": "deployments",
        "id": "0b2c3d4e-0000-4000-8000-000000000001",
    }


def test_k8s_event_materialised_columns(chdb_sink: ChdbSink):
    chdb_sink.insert("k8s_events", rows(k8s_event(1)), "t-ev")
    (row,) = chdb_sink.query(
        "SELECT regarding_api_group, regarding_kind, scope_type, type, reason, is_series, "
        "source_component, toString(event_time) AS et FROM audit.k8s_events"
    )
    assert row == {
        "regarding_api_group": "inventory.miloapis.com",
        "regarding_kind": "Machine",
        "scope_type": "Project",
        "type": "Normal",
        "reason": "Ready",
        "is_series": False,
        "source_component": "inventory-controller",
        "et": f"{DAY} 10:00:01.123456",
    }


def test_core_group_event_has_an_empty_api_group(chdb_sink: ChdbSink):
    event = k8s_event(2, regarding={"apiVersion": "v1", "kind": "Pod", "name": "p"})
    chdb_sink.insert("k8s_events", rows(event), "t-core")
    assert chdb_sink.query("SELECT regarding_api_group AS g FROM audit.k8s_events") == [{"g": ""}]


def test_event_without_any_timestamp_is_a_non_retriable_error(chdb_sink: ChdbSink):
    event = k8s_event(3)
    del event["eventTime"], event["metadata"]["creationTimestamp"]
    with pytest.raises(SinkError) as info:
        chdb_sink.insert("k8s_events", rows(event, k8s_event(4)), "t-bad")
    assert not info.value.retriable
    # the block failed as a whole: nothing of it was stored
    assert chdb_sink.query("SELECT count() AS n FROM audit.k8s_events") == [{"n": 0}]


def test_same_token_twice_stores_once(chdb_sink: ChdbSink):
    batch = rows(*(activity(i) for i in range(50)))
    chdb_sink.insert("activities", batch, "batch-1")
    chdb_sink.insert("activities", batch, "batch-1")
    assert chdb_sink.query("SELECT count() AS n FROM audit.activities") == [{"n": 50}]
    chdb_sink.insert("activities", batch[:1], "batch-2")  # another token is a new insert
    assert chdb_sink.query("SELECT count() AS n FROM audit.activities") == [{"n": 51}]


def test_duplicate_with_another_token_collapses_with_final(chdb_sink: ChdbSink):
    chdb_sink.insert("activities", rows(activity(1), activity(2)), "first")
    chdb_sink.insert("activities", rows(activity(2)), "redelivered")
    raw = chdb_sink.query("SELECT count() AS n FROM audit.activities")
    final = chdb_sink.query(
        "SELECT count() AS n, uniqExact(origin_id) AS u FROM audit.activities FINAL"
    )
    assert raw == [{"n": 3}]
    assert final == [{"n": 2, "u": 2}]


def _index_bytes(sink: ChdbSink) -> list[int]:
    parts = sink.query(
        "SELECT secondary_indices_compressed_bytes AS b FROM system.parts "
        "WHERE database = 'audit' AND table = 'activities' AND active ORDER BY name"
    )
    return [p["b"] for p in parts]


def test_skip_indexes_are_left_to_merges_and_results_do_not_change(chdb_sink: ChdbSink):
    assert chdb_sink.defer_skip_indexes
    chdb_sink.insert("activities", rows(*(activity(i) for i in range(20))), "part-1")
    chdb_sink.insert("activities", rows(*(activity(i) for i in range(20, 40))), "part-2")
    assert _index_bytes(chdb_sink) == [0, 0]  # the inserts built no skip index
    query = (
        "SELECT count() AS n FROM audit.activities WHERE resource_name = {name:String} "
        "SETTINGS use_skip_indexes = 1"
    )
    assert chdb_sink.query(query, {"name": "app-27"}) == [{"n": 1}]
    chdb_sink.execute("OPTIMIZE TABLE audit.activities FINAL")
    (merged,) = _index_bytes(chdb_sink)
    assert merged > 0  # the merge built them
    assert chdb_sink.query(query, {"name": "app-27"}) == [{"n": 1}]
    assert chdb_sink.query(query, {"name": "app-99"}) == [{"n": 0}]


def test_skip_indexes_are_built_at_insert_when_asked(tmp_path):
    sink = ChdbSink(tmp_path / "chdb", defer_skip_indexes=False)
    try:
        migrate(sink)
        sink.open()
        sink.insert("activities", rows(*(activity(i) for i in range(20))), "part-1")
        (built,) = _index_bytes(sink)
        assert built > 0
    finally:
        sink.close()


def test_query_parameters_are_data_not_sql(chdb_sink: ChdbSink):
    hostile = "x'); DROP TABLE audit.activities; --"
    chdb_sink.insert("activities", rows(activity(1, tenant=hostile), activity(2)), "t")
    got = chdb_sink.query(
        "SELECT tenant_name, {echo:String} AS echo FROM audit.activities "
        "WHERE tenant_name = {tenant:String}",
        {"tenant": hostile, "echo": hostile},
    )
    assert got == [{"tenant_name": hostile, "echo": hostile}]
    assert chdb_sink.query("SELECT count() AS n FROM audit.activities") == [{"n": 2}]


def test_bad_sql_is_not_retriable(chdb_sink: ChdbSink):
    with pytest.raises(SinkError) as info:
        chdb_sink.query("SELECT no_such_column FROM audit.activities")
    assert not info.value.retriable and info.value.code == 47


def test_open_without_tables_says_to_migrate(tmp_path):
    sink = ChdbSink(tmp_path / "empty")
    try:
        with pytest.raises(SinkError, match="activity migrate"):
            sink.open()
    finally:
        sink.close()


def test_sinks_on_one_directory_share_the_session(chdb_sink: ChdbSink):
    other = ChdbSink(chdb_sink.path)
    try:
        other.open()
        other.insert("activities", rows(activity(9)), "shared")
    finally:
        other.close()
    assert chdb_sink.query("SELECT count() AS n FROM audit.activities") == [{"n": 1}]


def test_temporary_directory_is_removed_on_close():
    sink = ChdbSink()
    assert sink.query("SELECT 1 AS x") == [{"x": 1}]
    path = sink.path
    sink.close()
    assert path and not Path(path).exists()
