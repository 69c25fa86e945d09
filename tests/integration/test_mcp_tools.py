"""The MCP tools in-process on chDB: ``activity mcp --tenant-type/--tenant-name`` confines every
tool to one tenant, and the history and summary tools refuse what they cannot answer."""

from __future__ import annotations

import time

import orjson
import pytest

from processor.mcp import tools
from processor.mcp.tools import Store
from processor.query.errors import QueryError
from processor.query.timeparse import NS, format_rfc3339
from processor.sink.chdb import ChdbSink

pytestmark = pytest.mark.integration

NOW = time.time_ns()


def _activity(n: int, tenant: str, actor: str) -> bytes:
    return orjson.dumps({
        "apiVersion": "activity.miloapis.com/v1alpha1", "kind": "Activity",
        "metadata": {"name": f"act-{n}", "creationTimestamp": format_rfc3339(NOW - n * 60 * NS, 3)},
        "spec": {"summary": f"{actor} did {n}", "changeSource": "human",
                 "actor": {"type": "user", "name": actor},
                 "resource": {"apiGroup": "", "kind": "Secret", "name": "s", "namespace": "ns",
                              "uid": "uid-s"},
                 "tenant": {"type": "Organization", "name": tenant},
                 "origin": {"type": "audit", "id": f"origin-{n}"}},
    })  # fmt: skip


@pytest.fixture
def store(chdb_sink: ChdbSink) -> ChdbSink:
    rows = [_activity(1, "acme", "alice"), _activity(2, "globex", "alice"),
            _activity(3, "acme", "bob")]  # fmt: skip
    chdb_sink.insert("activities", rows, "mcp-tools")
    return chdb_sink


def test_a_tenant_store_sees_its_tenant_only(store: ChdbSink) -> None:
    acme = Store(store, "Organization", "acme")
    names = [a["name"] for a in tools.query_activities(acme, "now-1d")["activities"]]
    assert names == ["act-1", "act-3"]
    assert tools.get_user_activity_summary(acme, "alice")["totalActivities"] == 1
    history = tools.get_resource_history(acme, resourceUID="uid-s")
    assert [a["name"] for a in history["activities"]] == ["act-3", "act-1"]
    facets = tools.get_activity_facets(acme, ["spec.actor.name"], startTime="now-1d")
    assert facets == {
        "spec.actor.name": [{"value": "alice", "count": 1}, {"value": "bob", "count": 1}]
    }
    everyone = Store(store)
    assert tools.summarize_recent_activity(everyone, "now-1d")["totalActivities"] == 3


def test_tools_refuse_what_they_cannot_answer(store: ChdbSink) -> None:
    with pytest.raises(QueryError, match="give resourceUID or name"):
        tools.get_resource_history(Store(store), kind="Secret")
    with pytest.raises(QueryError, match="bucketSize"):
        tools.get_activity_timeline(Store(store), "now-1d", bucketSize="week")
    with pytest.raises(QueryError, match="expected an integer"):
        tools.find_failed_operations(Store(store), "now-1d", statusCodeMin=True)  # type: ignore[arg-type]
