"""What one chDB insert of activities costs, and which part of the upstream layout it pays for.

Renders bundled-policy activities from the standard corpus, migrates a fresh chDB directory, and
inserts blocks of ``--rows`` activities through :class:`processor.sink.chdb.ChdbSink` (the
worker's insert: RowBinary, dedup token, skip indexes deferred) into four tables, interleaved:

* ``activities``: ``audit.activities`` as migrated: upstream's table plus the three query
  projections of migration 105 (docs/design.md#d16);
* ``upstream``: upstream's table, without those three projections;
* ``part_offset_indexes``: upstream's table plus three ``_part_offset`` projections on the same
  keys instead (an index into the table's own order, the lighter alternative to 105);
* ``no_projections``: without any projection;
* ``no_projections_no_indexes``: without projections and skip indexes;
* ``json_only``: one ``String`` column with the same codec (no materialised columns, no sort key).

Prints the median process CPU and wall time per insert, per table and as a ratio to upstream's
table, plus the fixed cost of a 10-row insert. Not a test: run it as

    python tests/bench/insert_cost.py [--rows 1000] [--repeat 6]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time

import orjson

from processor.activity import encode_activity
from processor.bench.corpus import generate
from processor.policy.bundled import bundled_policy_dir
from processor.policy.compile import compile_set
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate
from processor.translate import Output

_PROJECTION = re.compile(r",\s*PROJECTION \w+\s*\([^()]*(\([^()]*\)[^()]*)*\)")
_INDEX = re.compile(r",\s*INDEX [^,]*GRANULARITY \d+")
_QUERY_PROJECTION = re.compile(
    r",\s*PROJECTION activity_\w+_projection\s*\([^()]*(\([^()]*\)[^()]*)*\)"
)
#: The keys of migration 105's projections, for the ``_part_offset`` variant.
_QUERY_KEYS = {
    "actor": "actor_name, timestamp",
    "tenant_kind": "tenant_type, tenant_name, resource_kind, timestamp",
    "object": "resource_kind, resource_name, timestamp",
}


def activities(needed: int) -> list[bytes]:
    """At least ``needed`` encoded activities of the bundled policies over the standard corpus."""
    compiled = compile_set([str(bundled_policy_dir())], {}, stages=None, max_record_bytes=10 << 20)
    out = Output()
    for record in generate(needed * 10, 3):
        compiled.translator.translate(orjson.dumps(record), out, None)
        if len(out.activities) >= needed:
            break
    return [encode_activity(a) for a in out.activities]


def tables(sink: ChdbSink) -> list[str]:
    """Create the variants beside the migrated ``audit.activities``; their names."""
    ddl = sink.query("SHOW CREATE TABLE audit.activities")[0]["statement"]
    upstream = _QUERY_PROJECTION.sub("", ddl)
    if upstream == ddl:
        raise SystemExit("the query projections of migration 105 are not in audit.activities")
    variants = {
        "upstream": upstream,
        "part_offset_indexes": upstream,
        "no_projections": _PROJECTION.sub("", ddl),
        "no_projections_no_indexes": _INDEX.sub("", _PROJECTION.sub("", ddl)),
    }
    for name, text in variants.items():
        sink.execute(text.replace("audit.activities", f"audit.{name}", 1))
    for key, columns in _QUERY_KEYS.items():
        sink.execute(
            f"ALTER TABLE audit.part_offset_indexes ADD PROJECTION {key}_index "
            f"(SELECT _part_offset ORDER BY ({columns}))"
        )
    sink.execute(
        "CREATE TABLE audit.json_only (activity_json String CODEC(ZSTD(3))) "
        "ENGINE = MergeTree ORDER BY tuple()"
    )
    names = ["activities", *variants, "json_only"]
    sink.tables.update({name: "activity_json" for name in names})
    return names


def timed(sink: ChdbSink, table: str, rows: list[bytes], token: str) -> tuple[float, float]:
    """(CPU ms, wall ms) of one insert (CPU: this process's, as the translate benchmarks count)."""
    cpu, wall = time.process_time(), time.perf_counter()
    sink.insert(table, rows, token)
    return (time.process_time() - cpu) * 1e3, (time.perf_counter() - wall) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1000, help="activities per insert")
    parser.add_argument("--repeat", type=int, default=6, help="inserts per table")
    args = parser.parse_args()
    rows = activities(args.rows * 4)
    size = sum(map(len, rows)) // len(rows)
    print(f"{len(rows):,} activities, {size:,} bytes each on average; {args.rows} per insert")
    with tempfile.TemporaryDirectory(prefix="insert-cost-") as tmp:
        sink = ChdbSink(tmp)
        migrate(sink)
        sink.open()
        names = tables(sink)
        small = {
            n: [timed(sink, n, rows[k * 10 : k * 10 + 10], f"s{n}{k}")[1] for k in range(5)]
            for n in names
        }
        results: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        offset = 0
        for round_ in range(args.repeat):
            for name in names:
                block = [rows[(offset + i) % len(rows)] for i in range(args.rows)]
                offset += args.rows
                results[name].append(timed(sink, name, block, f"r{round_}{name}"))
        sink.close()
    base = statistics.median(c for c, _ in results["upstream"])
    print(f"{'table':<28} {'CPU ms':>8} {'wall ms':>8} {'CPU vs upstream':>16} {'10 rows, ms':>12}")
    for name in names:
        cpu = statistics.median(c for c, _ in results[name])
        wall = statistics.median(w for _, w in results[name])
        print(
            f"{name:<28} {cpu:>8.1f} {wall:>8.1f} {cpu / base:>15.2f}x "
            f"{statistics.median(small[name]):>12.1f}"
        )


if __name__ == "__main__":
    main()
