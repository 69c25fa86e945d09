"""``activity bench --query``: latency of typical operator queries over generated activities.

Data is generated inside ClickHouse (``INSERT ... SELECT`` from ``numbers()``, the Activity JSON
built with ClickHouse string functions), never row by row from Python, so 10 million rows take
minutes, not hours. The distribution (see :func:`generate_sql`): timestamps spread evenly over
the last ``days`` days (millisecond precision), 50 organisations and 200 projects, 2,000 human
and 30 controller actors, 20 kinds, 100,000 objects in 300 namespaces.

Queries measured (each repeated with varying parameters; p50/p99 wall time of the full
``run_query`` call, i.e. SQL build, ClickHouse, JSON decode):

* ``object``: one object's timeline over the whole window (kind + name filter);
* ``actor``: one actor's last day (``--actor``);
* ``tenant-kind``: one kind across one tenant over 7 days.

Each shape runs in every duplicate mode twice, through the query projections of migration 105
(the default path, ``projection``) and as the plain query (``plain``, ``run_query(...,
projections=False)``: the reverse-order read of the table, the path before those projections);
``FINAL`` reads no projection and runs once. With chDB the rows ClickHouse read per request (the
engine's ``SelectedRows`` counter) are printed too.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processor.query.service import Backend, QueryRequest, run_query
from processor.query.tables import ACTIVITIES

log = logging.getLogger(__name__)

KINDS = (
    *("Pod", "Deployment", "Service", "ConfigMap", "Secret", "StatefulSet", "DaemonSet", "Job"),
    *("CronJob", "Ingress", "Namespace", "ServiceAccount", "Role", "RoleBinding"),
    *("PersistentVolumeClaim", "NetworkPolicy", "HorizontalPodAutoscaler", "Gateway"),
    *("HTTPRoute", "Certificate"),
)
OBJECTS = 100_000
ACTORS = 2_000
NAMESPACES = 300
ORGS = 50
PROJECTS = 200
_CHUNK = 1_000_000
# ClickHouse format() template ({N} = argument N, {{ }} = literal braces); no single quotes.
_TEMPLATE = (
    '{{"apiVersion":"activity.miloapis.com/v1alpha1","kind":"Activity",'
    '"metadata":{{"name":"act-{0}","namespace":"{1}","creationTimestamp":"{2}"}},'
    '"spec":{{"summary":"{3} updated {4} {5} in {1}","changeSource":"{6}",'
    '"actor":{{"type":"{7}","name":"{3}","uid":"uid-{3}"}},'
    '"resource":{{"apiGroup":"{8}","kind":"{4}","name":"{5}","namespace":"{1}","uid":"{9}"}},'
    '"tenant":{{"type":"{10}","name":"{11}"}},"origin":{{"type":"audit","id":"{12}"}}}}}}'
)


def generate_sql(
    database: str, offset: int, count: int, end_ms: int, span_ms: int, total: int
) -> str:
    """``INSERT ... SELECT`` of ``count`` activities numbered from ``offset`` (of ``total``).

    Row ``n`` has timestamp ``end_ms - span_ms * (n + 1) / (total + 1)`` (ms), so the whole set
    covers ``span_ms`` evenly and every batch is a disjoint slice of it.
    """
    kinds = "[" + ",".join(f"'{k}'" for k in KINDS) + "]"
    return f"""
INSERT INTO {database}.activities (activity_json)
SELECT format('{_TEMPLATE}',
  hex(n), ns, ts, actor, kind, obj, source, actor_type, grp, ruid, ttype, tname, toString(oid))
FROM (
  SELECT number AS n,
    cityHash64(number) AS h,
    concat('ns-', toString(h % {NAMESPACES})) AS ns,
    toInt64({end_ms} - intDiv(toUInt64({span_ms}) * (number + 1), {total + 1})) AS ms,
    concat(replaceOne(toString(fromUnixTimestamp64Milli(ms, 'UTC')), ' ', 'T'), 'Z') AS ts,
    if(h % 10 < 7, concat('user-', toString(intDiv(h, 7) % {ACTORS}), '@example.com'),
       concat('system:serviceaccount:kube-system:controller-', toString(intDiv(h, 7) % 30)))
      AS actor,
    if(h % 10 < 7, 'human', 'system') AS source,
    if(h % 10 < 7, 'user', 'serviceaccount') AS actor_type,
    {kinds}[(intDiv(h, 11) % {len(KINDS)}) + 1] AS kind,
    concat('obj-', toString(intDiv(h, 13) % {OBJECTS})) AS obj,
    if(kind IN ('Deployment','StatefulSet','DaemonSet'), 'apps', '') AS grp,
    concat('ruid-', kind, '-', obj) AS ruid,
    if(h % 5 < 4, 'Organization', 'Project') AS ttype,
    if(ttype = 'Organization', concat('org-', toString(intDiv(h, 17) % {ORGS})),
       concat('proj-', toString(intDiv(h, 17) % {PROJECTS}))) AS tname,
    generateUUIDv4(number) AS oid
  FROM numbers({offset}, {count})
)"""


def generate(
    sink: Any,
    total: int,
    *,
    end_ms: int | None = None,
    days: float = 29.0,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Insert ``total`` generated activities into ``sink`` (server-side, in 1M-row batches)."""
    end = int(time.time() * 1000) - 60_000 if end_ms is None else end_ms
    span = int(days * 86400 * 1000)
    database = getattr(sink, "database", "audit")
    for offset in range(0, total, _CHUNK):
        count = min(_CHUNK, total - offset)
        sink.execute(generate_sql(database, offset, count, end, span, total))
        if progress is not None:
            progress(offset + count)


@dataclass(frozen=True)
class Case:
    """One benchmarked query shape; ``make(rng)`` returns a request with fresh parameters."""

    name: str
    make: Callable[[random.Random], QueryRequest]


def _object(rng: random.Random) -> QueryRequest:
    kind = rng.choice(KINDS)
    name = f"obj-{rng.randrange(OBJECTS)}"
    return QueryRequest(
        ACTIVITIES,
        filter=f"spec.resource.kind == '{kind}' && spec.resource.name == '{name}'",
        start="now-29d",
    )


def _actor(rng: random.Random) -> QueryRequest:
    return QueryRequest(
        ACTIVITIES, actor=f"user-{rng.randrange(ACTORS)}@example.com", start="now-1d"
    )


def _tenant_kind(rng: random.Random) -> QueryRequest:
    return QueryRequest(
        ACTIVITIES,
        tenant_type="Organization",
        tenant_name=f"org-{rng.randrange(ORGS)}",
        filter=f"spec.resource.kind == '{rng.choice(KINDS)}'",
        start="now-7d",
    )


CASES = (Case("object", _object), Case("actor", _actor), Case("tenant-kind", _tenant_kind))


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples`` by nearest rank."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


PATHS = ("projection", "plain")


def variants(modes: list[str]) -> list[tuple[str, str]]:
    """(dedup mode, path) pairs to time: both paths, except ``final`` (no projection)."""
    return [(m, p) for m in modes for p in PATHS if not (m == "final" and p == "projection")]


def selected_rows(backend: Backend) -> int | None:
    """The engine's rows-read counter: chDB only (a server's counter counts every client)."""
    if getattr(backend, "name", "") != "chdb":
        return None
    rows = backend.query("SELECT value FROM system.events WHERE event = 'SelectedRows'")
    return int(rows[0]["value"]) if rows else 0


def measure(
    backend: Backend, case: Case, repeat: int, modes: list[str], seed: int = 7
) -> dict[tuple[str, str], dict[str, float]]:
    """Run ``repeat`` requests of ``case``, each in every variant (rotating which goes first).

    Every request is first run once untimed so that no variant pays for a cold cache alone.

    Returns:
        (mode, path) -> p50/p99/max in ms, the mean number of rows returned and the mean
        rows read (``read``, -1 when unknown).
    """
    rng = random.Random(seed)
    pairs = variants(modes)
    times: dict[tuple[str, str], list[float]] = {v: [] for v in pairs}
    rows = dict.fromkeys(pairs, 0)
    read = dict.fromkeys(pairs, 0)
    for i in range(repeat):
        request = case.make(rng)
        run_query(backend, request, dedup=pairs[0][0])
        for mode, path in pairs[i % len(pairs) :] + pairs[: i % len(pairs)]:
            before = selected_rows(backend)
            t0 = time.perf_counter()
            page = run_query(backend, request, dedup=mode, projections=path == "projection")
            times[mode, path].append((time.perf_counter() - t0) * 1000)
            after = selected_rows(backend)
            rows[mode, path] += len(page.items)
            read[mode, path] += -1 if before is None or after is None else after - before
    return {
        v: {
            "p50": statistics.median(t),
            "p99": percentile(t, 0.99),
            "max": max(t),
            "rows": rows[v] / repeat,
            "read": max(-1.0, read[v] / repeat),
        }
        for v, t in times.items()
    }


def _ensure_rows(sink: Any, rows: int) -> int:
    database = getattr(sink, "database", "audit")
    have = int(sink.query(f"SELECT count() AS c FROM {database}.activities")[0]["c"])
    if have >= rows:
        return have
    if have:
        sink.execute(f"TRUNCATE TABLE {database}.activities")
    from processor.progress import progress_bar

    t0 = time.perf_counter()
    with progress_bar(rows, desc="generating activities", unit="rows", unit_scale=True) as bar:
        generate(sink, rows, progress=lambda n: bar.update(n - bar.n))
    took = time.perf_counter() - t0
    print(
        f"generated {rows:,} activities in {took:.0f} s ({rows / took:,.0f} a second)",
        file=sys.stderr,
    )
    sink.execute(f"OPTIMIZE TABLE {database}.activities FINAL")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the query benchmark (``activity bench --query``)."""
    parser.add_argument("--clickhouse-url", default=None, help="default: chdb in a bench dir")
    parser.add_argument("--clean", action="store_true", help="remove the default store after")
    parser.add_argument("--rows", type=int, default=10_000_000, help="activities to store")
    parser.add_argument("--repeat", type=int, default=100, help="runs per query shape")
    parser.add_argument(
        "--dedup",
        default="collapse,final,limit_by,none",
        help="duplicate collapsing modes to compare",
    )


def main(args: argparse.Namespace) -> int:
    """Generate (or reuse) the data, run every case in every dedup mode, print the table."""
    from processor.sink import default_data_dir, open_sink
    from processor.sink.migrate import migrate

    own = default_data_dir() / "bench-query"
    url = getattr(args, "clickhouse_url", None) or f"chdb://{own}"
    sink = open_sink(url)
    try:
        migrate(sink)
        sink.open()
        rows = _ensure_rows(sink, getattr(args, "rows", 10_000_000))
        repeat = getattr(args, "repeat", 100)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"query latency over {rows:,} activities ({url}), {repeat} runs per shape, ms")
        print(f"cpus {os.cpu_count()}, load average {load}")
        print(
            f"{'query':<12} {'dedup':<9} {'path':<10} {'p50':>8} {'p99':>8} {'max':>8} "
            f"{'rows':>6} {'read':>10} {'p99 vs plain':>12}"
        )
        modes = [
            m.strip() for m in getattr(args, "dedup", "collapse,final,limit_by,none").split(",")
        ]
        for case in CASES:
            results = measure(sink, case, repeat, modes)
            for (mode, path), r in results.items():
                ratio = results[mode, "plain"]["p99"] / r["p99"] if r["p99"] else 0.0
                read = f"{r['read']:10,.0f}" if r["read"] >= 0 else f"{'-':>10}"
                print(
                    f"{case.name:<12} {mode:<9} {path:<10} {r['p50']:8.1f} {r['p99']:8.1f} "
                    f"{r['max']:8.1f} {r['rows']:6.1f} {read} {ratio:11.2f}x",
                    flush=True,
                )
    finally:
        sink.close()
        if url == f"chdb://{own}":
            _leave(own, getattr(args, "clean", False))
    return 0


def _leave(store: Path, clean: bool) -> None:
    """Remove the default store (``--clean``) or say where it stays and how to remove it."""
    if clean:
        shutil.rmtree(store, ignore_errors=True)
        print(f"removed the benchmark store {store}", file=sys.stderr)
        return
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    print(
        f"the benchmark store stays in {store} ({size / 1e9:.1f} GB) for the next run; "
        f"remove it with `rm -rf {store}` or run with --clean",
        file=sys.stderr,
    )


if __name__ == "__main__":  # python -m processor.bench.query [--rows N]
    _parser = argparse.ArgumentParser(prog="python -m processor.bench.query")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
