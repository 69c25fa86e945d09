"""Queries on chDB over generated data: every operator and field, scope, search, facets, events.

Each filter runs twice, in SQL (all pages) and client-side with the watch evaluator over the same
documents, and both must select exactly the same records: that checks the translator, the
parameter encoding and the evaluator against each other on real ClickHouse.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor import cli
from processor.query.errors import CursorError, FilterError, QueryError
from processor.query.evaluate import matches
from processor.query.facets import facets
from processor.query.filter import compile_filter
from processor.query.params import Params
from processor.query.service import QueryRequest, iter_pages, run_query
from processor.query.tables import ACTIVITIES, AUDIT_LOGS, K8S_EVENTS, Table
from processor.query.timeparse import NS, format_rfc3339
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate

pytestmark = pytest.mark.integration

NOW = time.time_ns()
HOSTILE = "o'brien\\\"; DROP TABLE audit.activities; --\t\n{p0:String} é😀"
KINDS = ["Pod", "Deployment", "Service", "Secret"]
ACTORS = ["alice@example.com", "bob@example.com", "system:serviceaccount:kube-system:ctrl", HOSTILE]


def _ts(ns: int) -> str:
    return format_rfc3339(ns, 3)


def make_activity(i: int, rng: random.Random) -> dict[str, Any]:
    actor = rng.choice(ACTORS)
    kind = rng.choice(KINDS)
    tenant = rng.choice(
        [("Organization", "acme"), ("Organization", "globex"), ("Project", "p1"), ("", "")]
    )
    when = NOW - rng.randrange(1, 9 * 86400) * NS // 1 - rng.randrange(1000) * 10**6
    when -= when % (10**9 if i % 3 else 10**6)  # many whole-second timestamps: ties
    return {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "Activity",
        "metadata": {"name": f"act-{i:06d}", "namespace": rng.choice(["default", "team-a"]),
                     "creationTimestamp": _ts(when)},
        "spec": {
            "summary": f"{actor} updated {kind} obj-{i % 40} ({'urgent' if i % 7 == 0 else 'ok'})",
            "changeSource": "system" if actor.startswith("system:") else "human",
            "actor": {"type": "user", "name": actor, "uid": f"uid-{ACTORS.index(actor)}"},
            "resource": {"apiGroup": "apps" if kind == "Deployment" else "", "kind": kind,
                         "name": f"obj-{i % 40}", "namespace": rng.choice(["prod", "dev", ""]),
                         "uid": f"ruid-{i % 40}"},
            "tenant": {"type": tenant[0], "name": tenant[1]},
            "origin": {"type": rng.choice(["audit", "event"]), "id": f"origin-{i:06d}"},
        },
    }  # fmt: skip


def make_audit(i: int, rng: random.Random) -> dict[str, Any]:
    when = NOW - rng.randrange(1, 5 * 86400) * NS - rng.randrange(10**9)
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"0b2c3d4e-0000-4000-8000-{i:012d}",
        "stage": "ResponseComplete",
        "verb": rng.choice(["get", "create", "update", "patch", "delete"]),
        "user": {"username": rng.choice(ACTORS), "uid": f"u-{i % 3}"},
        "objectRef": {"resource": rng.choice(["pods", "deployments"]), "name": f"obj-{i % 10}",
                      "namespace": rng.choice(["prod", "dev"]),
                      "apiGroup": rng.choice(["", "apps"])},
        "responseStatus": {"code": rng.choice([200, 201, 404, 409, 500])},
        "requestReceivedTimestamp": format_rfc3339(when, 6),
        "annotations": {"platform.miloapis.com/scope.type": "Organization",
                        "platform.miloapis.com/scope.name": rng.choice(["acme", "globex"])},
    }  # fmt: skip


def make_event(i: int, rng: random.Random) -> dict[str, Any]:
    when = NOW - rng.randrange(1, 3 * 86400) * NS
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"ev-{i}", "namespace": rng.choice(["prod", "dev"]), "uid": f"e-{i}"},
        "eventTime": format_rfc3339(when, 6),
        "regarding": {"apiVersion": "v1", "kind": rng.choice(["Pod", "Node"]), "name": f"n-{i % 5}",
                      "namespace": "prod"},
        "reason": rng.choice(["Started", "BackOff", "Pulled"]),
        "type": rng.choice(["Normal", "Warning"]),
        "note": f"event {i}",
        "reportingController": rng.choice(["kubelet", "scheduler"]),
    }  # fmt: skip


class Data:
    def __init__(self, sink: ChdbSink) -> None:
        rng = random.Random(20261120)
        self.sink = sink
        self.activities = [make_activity(i, rng) for i in range(600)]
        self.audit = [make_audit(i, rng) for i in range(300)]
        self.events = [make_event(i, rng) for i in range(200)]
        self.docs = {"activities": self.activities, "audit_logs": self.audit,
                     "k8s_events": self.events}  # fmt: skip
        for name, docs in self.docs.items():
            rows = [orjson.dumps(d) for d in docs]
            sink.insert(name, rows[:400], f"{name}-a")
            sink.insert(name, rows[400:], f"{name}-b")
            # redelivery: the same records again under another token (not deduplicated on insert)
            sink.insert(name, rows[:50], f"{name}-redelivered")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    path: Path = tmp_path_factory.mktemp("query") / "chdb"
    sink = ChdbSink(path)
    try:
        migrate(sink)
        sink.open()
        yield Data(sink)
    finally:
        sink.close()


def sql_ids(data: Data, request: QueryRequest) -> list[str]:
    out = []
    for page in iter_pages(data.sink, request):
        out += [_id(request.table, doc) for doc in page.items]
    return out


def _id(table: Table, doc: dict[str, Any]) -> str:
    if table is ACTIVITIES:
        return str(doc["metadata"]["name"])
    if table is AUDIT_LOGS:
        return str(doc["auditID"])
    return str(doc["metadata"]["uid"])


def check(data: Data, table: Table, source: str, limit: int = 100) -> int:
    request = QueryRequest(table, filter=source, start="now-10d", limit=limit)
    got = sql_ids(data, request)
    assert len(got) == len(set(got)), "duplicates in results"
    expr = compile_filter(source, table)
    want = {_id(table, d) for d in data.docs[table.name] if matches(expr, d)}
    assert set(got) == want, source
    return len(want)


ACTIVITY_FILTERS = [
    "",
    "spec.actor.name == 'alice@example.com'",
    "spec.actor.name != 'alice@example.com'",
    "spec.actor.name < 'bob'",
    "spec.actor.name <= 'bob@example.com'",
    "spec.actor.name > 'bob@example.com'",
    "spec.actor.name >= 'bob@example.com'",
    "spec.changeSource == 'system' && spec.resource.kind in ['Pod', 'Secret']",
    "spec.changeSource == 'system' || spec.resource.kind == 'Service'",
    "!(spec.resource.kind in ['Pod', 'Secret'])",
    "spec.resource.kind in []",
    "spec.summary.contains('urgent')",
    "spec.summary.contains('URGENT')",
    "spec.actor.name.startsWith('system:')",
    "spec.actor.name.endsWith('@example.com')",
    "spec.actor.type == 'user'",
    "spec.actor.uid == 'uid-1'",
    "spec.resource.apiGroup == 'apps'",
    "spec.resource.apiGroup == ''",
    "spec.resource.name == 'obj-7'",
    "spec.resource.namespace == ''",
    "spec.resource.uid in ['ruid-1', 'ruid-2']",
    "spec.origin.type == 'event'",
    "spec.origin.id >= 'origin-000500'",
    "spec.tenant.type == 'Organization' && spec.tenant.name == 'acme'",
    "spec.tenant.type == ''",
    "metadata.namespace == 'team-a'",
    "metadata.name in ['act-000001', 'act-000599', 'act-999999']",
    f"metadata.creationTimestamp >= timestamp('{format_rfc3339(NOW - 2 * 86400 * NS)}')",
    f"metadata.creationTimestamp < timestamp('{format_rfc3339(NOW - 5 * 86400 * NS, 9)}')",
    "true",
    "false",
    "!false && (spec.actor.name == 'bob@example.com' || spec.summary.endsWith('(ok)'))",
]


@pytest.mark.parametrize("source", ACTIVITY_FILTERS)
def test_activity_filters(data: Data, source: str) -> None:
    check(data, ACTIVITIES, source, limit=37)


def test_hostile_values_are_data(data: Data) -> None:
    name = HOSTILE.replace("\\", "\\\\").replace("'", "\\'").replace("\t", "\\t")
    name = name.replace("\n", "\\n")
    assert check(data, ACTIVITIES, f"spec.actor.name == '{name}'") > 0
    assert check(data, ACTIVITIES, f"spec.actor.name in ['{name}', 'x']") > 0
    assert check(data, ACTIVITIES, "spec.actor.name.contains('DROP TABLE')") > 0
    count = data.sink.query("SELECT count() AS c FROM audit.activities")[0]["c"]
    assert int(count) == 650


AUDIT_FILTERS = [
    "verb == 'delete'",
    "verb in ['create', 'update', 'patch']",
    "responseStatus.code >= 400",
    "responseStatus.code in [200, 201]",
    "responseStatus.code != 404 && objectRef.resource == 'pods'",
    "objectRef.namespace == 'prod' && objectRef.name.startsWith('obj-1')",
    "objectRef.apiGroup == 'apps'",
    "user.username.endsWith('example.com')",
    "user.uid == 'u-2'",
    "auditID == '0b2c3d4e-0000-4000-8000-000000000007'",
    "auditID != '0B2C3D4E000040008000000000000007'",
    "auditID in ['0b2c3d4e-0000-4000-8000-000000000001', '0b2c3d4e-0000-4000-8000-000000000299']",
    "auditID.contains('0000000000')",
    f"requestReceivedTimestamp > timestamp('{format_rfc3339(NOW - 86400 * NS, 9)}')",
]


@pytest.mark.parametrize("source", AUDIT_FILTERS)
def test_audit_filters(data: Data, source: str) -> None:
    check(data, AUDIT_LOGS, source, limit=41)


def test_event_selectors_and_filters(data: Data) -> None:
    check(data, K8S_EVENTS, "reason == 'BackOff' && regarding.kind == 'Pod'", limit=13)
    request = QueryRequest(K8S_EVENTS, selector="type=Warning,reason!=Pulled", start="now-10d",
                           namespace="prod")  # fmt: skip
    got = set(sql_ids(data, request))
    want = {
        e["metadata"]["uid"]
        for e in data.events
        if e["type"] == "Warning"
        and e["reason"] != "Pulled"
        and e["metadata"]["namespace"] == "prod"
    }
    assert got == want and got


def test_scope_flags_search_and_dedup(data: Data) -> None:
    req = QueryRequest(ACTIVITIES, start="now-10d", tenant_type="organization", tenant_name="acme",
                       actor="alice@example.com", limit=1000)  # fmt: skip
    got = sql_ids(data, req)
    want = [
        a["metadata"]["name"]
        for a in data.activities
        if a["spec"]["tenant"] == {"type": "Organization", "name": "acme"}
        and a["spec"]["actor"]["name"] == "alice@example.com"
    ]
    assert sorted(got) == sorted(want) and want
    platform = sql_ids(data, QueryRequest(ACTIVITIES, start="now-10d", tenant_type="platform"))
    assert set(platform) == {a["metadata"]["name"] for a in data.activities
                             if a["spec"]["tenant"]["type"] == ""}  # fmt: skip
    found = sql_ids(data, QueryRequest(ACTIVITIES, start="now-10d", search="URGENT nothing"))
    assert set(found) == {a["metadata"]["name"] for a in data.activities
                          if "urgent" in a["spec"]["summary"]}  # fmt: skip
    everything = sql_ids(data, QueryRequest(ACTIVITIES, start="now-10d", limit=1000))
    assert len(everything) == len(set(everything)) == 600  # 50 redelivered rows collapsed


def test_newest_first_and_window(data: Data) -> None:
    page = run_query(data.sink, QueryRequest(ACTIVITIES, start="now-3d", limit=1000))
    stamps = [a["metadata"]["creationTimestamp"] for a in page.items]
    assert stamps == sorted(stamps, reverse=True)
    cutoff = format_rfc3339(NOW - 3 * 86400 * NS, 3)
    assert all(s >= cutoff[:19] for s in stamps)
    assert page.end_ns - page.start_ns == 3 * 86400 * NS


def test_cursor_is_bound_and_window_fixed(data: Data) -> None:
    request = QueryRequest(ACTIVITIES, start="now-10d", limit=10)
    page = run_query(data.sink, request)
    assert page.continue_token
    other = QueryRequest(ACTIVITIES, start="now-10d", limit=11, continue_token=page.continue_token)
    with pytest.raises(CursorError, match="parameters changed"):
        run_query(data.sink, other)
    later = NOW + 3600 * NS  # the relative window does not slide between pages
    again = replace(request, continue_token=page.continue_token)
    nxt = run_query(data.sink, again, now_ns=later)
    assert (nxt.start_ns, nxt.end_ns) == (page.start_ns, page.end_ns)


def test_request_validation(data: Data) -> None:
    with pytest.raises(QueryError, match="limit"):
        run_query(data.sink, QueryRequest(ACTIVITIES, limit=1001))
    with pytest.raises(FilterError):
        run_query(data.sink, QueryRequest(ACTIVITIES, filter="verb == 'get'"))
    with pytest.raises(QueryError, match="only supported for events"):
        run_query(data.sink, QueryRequest(ACTIVITIES, selector="type=Normal"))
    with pytest.raises(QueryError, match="only supported for activities"):
        run_query(data.sink, QueryRequest(AUDIT_LOGS, search="x"))
    with pytest.raises(QueryError, match="exceeds"):
        run_query(data.sink, QueryRequest(ACTIVITIES, start="now-31d"))
    with pytest.raises(QueryError, match="needs --tenant-type"):
        run_query(data.sink, QueryRequest(ACTIVITIES, tenant_name="acme"))


def test_facets(data: Data) -> None:
    request = QueryRequest(ACTIVITIES, start="now-10d", filter="spec.changeSource == 'human'")
    result = facets(data.sink, request, ["spec.actor.name", "spec.resource.kind"], limit=2)
    humans = [a for a in data.activities if a["spec"]["changeSource"] == "human"]
    for facet, path in zip(result, (("actor", "name"), ("resource", "kind")), strict=True):
        counts = Counter(a["spec"][path[0]][path[1]] for a in humans)
        want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        assert facet.values == want
    audit = facets(data.sink, QueryRequest(AUDIT_LOGS, start="now-10d"), ["responseStatus.code"])
    assert sum(c for _, c in audit[0].values) == 300
    with pytest.raises(QueryError, match=r"unsupported facet field 'spec\.summary'"):
        facets(data.sink, request, ["spec.summary"])
    with pytest.raises(QueryError, match="at most 10"):
        facets(data.sink, request, ["spec.actor.name"] * 11)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",)), max_size=30), min_size=1,
                max_size=4))  # fmt: skip
def test_parameters_round_trip(data: Data, values: list[str]) -> None:
    params = Params()
    scalar = params.add("string", values[0])
    array = params.add_array("string", values)
    row = data.sink.query(f"SELECT {scalar} AS s, {array} AS a", params.values)[0]
    assert row == {"s": values[0], "a": values}


# --- the commands -------------------------------------------------------------------------------


def run_cli(data: Data, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    from tests.integration.test_query_history import with_registrars

    with_registrars(monkeypatch)
    for name in ("ACTIVITY_TOKEN_KEYS", "ACTIVITY_TOKEN_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(Path(data.sink.path).parent))  # token key file
    return cli.main([*argv, "--clickhouse-url", f"chdb://{data.sink.path}"])


def test_cli_query_pages(
    data: Data, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["query", "--filter", "spec.resource.kind == 'Pod'", "--start", "now-10d"]
    assert run_cli(data, [*argv, "--limit", "5"], monkeypatch) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "ACTOR", "SOURCE", "SUMMARY"] and len(lines) == 6
    token = err.split("--continue '")[1].split("'")[0]
    assert run_cli(data, [*argv, "--limit", "5", "--continue", token, "-o", "json"],
                   monkeypatch) == 0  # fmt: skip
    out, _ = capsys.readouterr()
    assert len(orjson.loads(out)["items"]) == 5
    assert run_cli(data, [*argv, "--limit", "7", "--all-pages", "-o", "yaml"], monkeypatch) == 0
    out, err = capsys.readouterr()
    pods = sum(1 for a in data.activities if a["spec"]["resource"]["kind"] == "Pod")
    assert f"Showing {pods} results." in err and out.count("kind: Activity") == pods


def test_cli_other_tables_and_errors(
    data: Data, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_cli(data, ["audit", "query", "--filter", "responseStatus.code >= 500",
                          "--start", "now-10d", "-o", "wide"], monkeypatch) == 0  # fmt: skip
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].split()[:2] == ["TIME", "VERB"] and "AUDIT ID" in out
    assert run_cli(data, ["events", "query", "--field-selector", "type=Warning", "-n", "prod",
                          "--start", "now-10d", "-o", "json"], monkeypatch) == 0  # fmt: skip
    items = orjson.loads(capsys.readouterr()[0])["items"]
    assert items and all(e["type"] == "Warning" for e in items)
    assert run_cli(data, ["query", "--filter", "size(spec.summary) > 1"], monkeypatch) == 1
    assert "function size() is not supported" in capsys.readouterr()[1]
    assert run_cli(data, ["query", "--start", "now+1h"], monkeypatch) == 1
    assert "future" in capsys.readouterr()[1]
    assert run_cli(data, ["facets", "spec.changeSource", "--start", "now-10d"], monkeypatch) == 0
    out = capsys.readouterr()[0]
    assert out.splitlines()[0] == "FIELD: spec.changeSource"
    assert out.splitlines()[1].split() == ["VALUE", "COUNT"]


@pytest.fixture
def other_db(data: Data, request: pytest.FixtureRequest) -> Iterator[ChdbSink]:
    """A fresh database in the same chDB directory (chDB allows one directory per process)."""
    name = "q_" + "".join(c for c in request.node.name if c.isalnum())[-40:]
    sink = ChdbSink(data.sink.path, database=name)
    try:
        migrate(sink)
        sink.open()
        yield sink
    finally:
        sink.execute(f"DROP DATABASE IF EXISTS {name}")
        sink.close()


@pytest.mark.parametrize("dedup", ["collapse", "final", "limit_by"])
def test_newest_copy_wins(other_db: ChdbSink, dedup: str) -> None:
    chdb_sink = other_db
    rng = random.Random(1)
    docs = [make_activity(i, rng) for i in range(30)]
    chdb_sink.insert("activities", [orjson.dumps(d) for d in docs], "first")
    chdb_sink.insert("activities", [orjson.dumps(d) for d in docs], "redelivered")
    time.sleep(0.01)  # reindex_version (insert time, ms) of the copies is later
    for d in docs[::3]:
        d["spec"]["summary"] = "reindexed"
    chdb_sink.insert("activities", [orjson.dumps(d) for d in docs[::3]], "reindex")
    got = []
    request = QueryRequest(ACTIVITIES, start="now-10d", limit=4)
    while True:
        page = run_query(chdb_sink, request, dedup=dedup)
        got += page.items
        if not page.continue_token:
            break
        request = replace(request, continue_token=page.continue_token)
    assert sorted(a["metadata"]["name"] for a in got) == sorted(d["metadata"]["name"] for d in docs)
    assert sum(a["spec"]["summary"] == "reindexed" for a in got) == 10
