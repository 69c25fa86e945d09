"""The selective activity queries read the projections of migration 105 (docs/design.md#d16).

On chDB, over 50,000 activities in a few granules per part, laid out so that every actor, tenant
and object occurs in every granule (no skip index can prune the table's own read): each query
shape is planned on its projection (``EXPLAIN``), reads fewer rows than the plain query (the
engine's ``SelectedRows`` counter), and returns exactly the plain query's pages. A filter whose
estimate exceeds the cap falls back to the plain query with the same results.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from processor.query import sql
from processor.query.filter import compile_filter
from processor.query.service import QueryRequest, build, run_query
from processor.query.tables import ACTIVITIES
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import load_migrations, migrate

pytestmark = pytest.mark.integration

ROWS = 50_000
NOW_NS = time.time_ns()
KINDS = ("Pod", "Deployment", "Service", "Secret")
# ClickHouse format() template ({N} = argument N, {{ }} = literal braces).
_TEMPLATE = (
    '{{"apiVersion":"activity.miloapis.com/v1alpha1","kind":"Activity",'
    '"metadata":{{"name":"act-{0}","namespace":"ns","creationTimestamp":"{1}"}},'
    '"spec":{{"summary":"s","changeSource":"human","actor":{{"type":"user","name":"user-{2}"}},'
    '"resource":{{"kind":"{3}","name":"obj-{4}","namespace":"ns"}},'
    '"tenant":{{"type":"Organization","name":"org-{5}"}},"origin":{{"type":"audit","id":"o-{0}"}}}}}}'
)
# number % 1000 actors, % 4 kinds, % 197 names, % 250 organisations; one row every 400 ms: each
# shape selects 50-130 rows spread over every granule.
_INSERT = f"""
INSERT INTO audit.activities (activity_json)
SELECT format('{_TEMPLATE}', toString(number),
  concat(replaceOne(toString(fromUnixTimestamp64Milli(
    toInt64({NOW_NS // 10**6 - 60_000} - number * 400), 'UTC')), ' ', 'T'), 'Z'),
  toString(number % 1000), ['{"','".join(KINDS)}'][number % 4 + 1], toString(number % 197),
  toString(number % 250))
FROM numbers({ROWS})"""

SHAPES = {
    "activity_actor_projection": QueryRequest(ACTIVITIES, actor="user-7", start="now-1d"),
    "activity_tenant_kind_projection": QueryRequest(
        ACTIVITIES,
        tenant_type="Organization",
        tenant_name="org-3",
        filter="spec.resource.kind == 'Deployment'",
        start="now-7d",
    ),
    "activity_object_projection": QueryRequest(
        ACTIVITIES,
        filter="spec.resource.kind == 'Deployment' && spec.resource.name == 'obj-5'",
        start="now-29d",
    ),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbSink]:
    sink = ChdbSink(tmp_path_factory.mktemp("projections") / "chdb")
    try:
        migrate(sink)
        sink.open()
        sink.execute(_INSERT)
        yield sink
    finally:
        sink.close()


def _selected_rows(sink: ChdbSink) -> int:
    rows = sink.query("SELECT value FROM system.events WHERE event = 'SelectedRows'")
    return int(rows[0]["value"]) if rows else 0


def _read(sink: ChdbSink, query: str, params: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    before = _selected_rows(sink)
    rows = sink.query(query, params)
    return _selected_rows(sink) - before, rows


@pytest.mark.parametrize("projection", list(SHAPES))
def test_each_shape_reads_its_projection_and_fewer_rows(store: ChdbSink, projection: str) -> None:
    plan = build(SHAPES[projection], NOW_NS)
    select = plan.select
    assert select.projection("collapse")
    assert not select.projection("final")
    via = select.page_sql(101, "collapse", projection=True)
    plain = select.page_sql(101, "collapse")
    explain = store.query("EXPLAIN " + via, select.params.values)
    steps = [r["explain"].strip() for r in explain]
    assert f"ReadFromMergeTree ({projection})" in "\n".join(steps)
    read_via, rows_via = _read(store, via, select.params.values)
    read_plain, rows_plain = _read(store, plain, select.params.values)
    assert rows_via == rows_plain
    assert rows_via  # the shape selects something
    assert read_via * 2 < read_plain, (read_via, read_plain)


@pytest.mark.parametrize("dedup", ["collapse", "limit_by", "none"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_pages_equal_the_plain_query(store: ChdbSink, name: str, dedup: str) -> None:
    def pages(request: QueryRequest, projections: bool) -> list[list[dict[str, Any]]]:
        out = []
        while True:
            page = run_query(store, request, NOW_NS, dedup, projections=projections)
            out.append(page.items)
            if not page.continue_token or len(out) == 3:
                return out
            request = replace(request, continue_token=page.continue_token)

    request = replace(SHAPES[name], limit=40)
    via = pages(request, projections=True)
    assert via == pages(request, projections=False)
    assert len(via) > 1  # the continue token was followed


def test_a_read_over_the_cap_falls_back_to_the_plain_query(
    store: ChdbSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = SHAPES["activity_tenant_kind_projection"]
    expected = run_query(store, request, now_ns=NOW_NS).items
    sent: list[str] = []
    query = store.query

    def spy(text: str, params: Any = None) -> list[dict[str, Any]]:
        sent.append(text)
        return query(text, params)

    monkeypatch.setattr(sql, "PROJECTION_MAX_ROWS", 10)
    monkeypatch.setattr(store, "query", spy)
    assert run_query(store, request, now_ns=NOW_NS).items == expected
    assert ["max_rows_to_read = 10" in s for s in sent] == [True, False]


def test_only_equality_terms_pin_columns() -> None:
    def pinned(text: str) -> set[str]:
        expr = compile_filter(text, ACTIVITIES)
        assert expr is not None
        return sql.pinned_columns(expr)

    kind_and_name = "spec.resource.kind == 'Pod' && spec.resource.name == 'a'"
    assert pinned(kind_and_name) == {"resource_kind", "resource_name"}
    assert pinned("spec.resource.kind == 'Pod' || spec.resource.name == 'a'") == set()
    assert pinned("spec.actor.name != 'a'") == set()
    assert pinned("spec.actor.name == 'a' && spec.actor.name.startsWith('b')") == {"actor_name"}
    plan = build(QueryRequest(ACTIVITIES, filter="spec.resource.kind == 'Pod'"), NOW_NS)
    assert not plan.select.projection("collapse")  # the kind alone leads no projection
    assert not plan.select.copy().projection("collapse")
    tenant = QueryRequest(ACTIVITIES, tenant_type="Organization", tenant_name="o", filter="")
    assert not build(tenant, NOW_NS).select.projection("collapse")
    scoped = replace(tenant, filter="spec.resource.kind == 'Pod'")
    assert build(scoped, NOW_NS).select.copy().projection("collapse")


def test_the_migration_path_materialises_existing_parts(store: ChdbSink, tmp_path: Path) -> None:
    """Rows stored before migration 105 are rebuilt into its projections by its mutations."""
    before = tmp_path / "before"
    before.mkdir()
    for m in load_migrations():
        if m.version < 105:
            (before / f"{m.name}.sql").write_text(m.text)
    sink = ChdbSink(store.path, database="older")  # chDB: one data directory per process
    try:
        migrate(sink, directory=before)
        sink.open()
        sink.execute(
            _INSERT.replace("audit.", "older.").replace(f"numbers({ROWS})", "numbers(900)")
        )
        assert migrate(sink).applied == ["105_activities_query_projections"]
        deadline = time.monotonic() + 30
        names: set[str] = set()
        while time.monotonic() < deadline and not set(SHAPES) <= names:
            time.sleep(0.1)
            parts = sink.query(
                "SELECT DISTINCT name FROM system.projection_parts "
                "WHERE database = 'older' AND table = 'activities' AND active"
            )
            names = {r["name"] for r in parts}
        assert set(SHAPES) <= names
        plan = build(SHAPES["activity_actor_projection"], NOW_NS, database="older")
        rows = sink.query(plan.select.page_sql(10, projection=True), plan.select.params.values)
        assert rows
    finally:
        sink.close()
