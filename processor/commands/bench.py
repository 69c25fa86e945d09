"""``activity bench``: the benchmark corpus generator (the throughput benchmark comes later).

``activity bench --generate FILE`` writes the standard, seeded corpus of
:mod:`processor.bench.corpus` as JSON lines (``-`` for stdout); ``--batch N`` groups audit events
into ``EventList`` lines of up to N items, as the audit webhook sends them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="generate the benchmark corpus (throughput benchmark: not implemented yet)",
        description="Benchmark tools. --generate FILE writes the standard, seeded corpus of "
        "audit events and Kubernetes Events as JSON lines.",
    )
    parser.add_argument(
        "--generate",
        metavar="FILE",
        default=None,
        help="write the corpus to FILE ('-' for stdout)",
    )
    parser.add_argument(
        "--count", type=_non_negative, default=10000, help="records (default: 10000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default: 1)")
    parser.add_argument(
        "--batch",
        type=_non_negative,
        default=0,
        metavar="N",
        help="group audit events into EventList lines of up to N items (default: 0, one per line)",
    )
    parser.set_defaults(handler=_handle)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _handle(args: argparse.Namespace) -> int:
    if args.generate is None:
        print(
            "activity bench: the throughput benchmark is not implemented yet; "
            "use --generate FILE to write the benchmark corpus",
            file=sys.stderr,
        )
        return 2
    from processor.bench.corpus import write_jsonl

    started = time.perf_counter()
    target = sys.stdout.buffer if args.generate == "-" else args.generate
    stats = write_jsonl(target, args.count, seed=args.seed, batch=args.batch)
    elapsed = time.perf_counter() - started
    rate = stats.records / elapsed if elapsed > 0 else 0.0
    print(
        f"records={stats.records} audit={stats.audit} events={stats.events} "
        f"lines={stats.lines} bytes={stats.bytes} elapsed={elapsed:.2f}s records/s={rate:.0f}",
        file=sys.stderr,
    )
    return 0
