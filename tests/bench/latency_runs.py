"""The latency phase of ``activity bench --e2e`` alone, several times at one rate.

One p99 of a 10 s phase on this shared 2-core machine moves by 2-4x between identical runs, so a
verdict needs several. Each run starts a fresh nats-server and ``activity run`` worker (chDB),
publishes single records (or EventLists of ``--list-size``) at ``--rate`` records/s for 10 s and
times each record to its activity on ``activities.>`` (:func:`processor.bench.e2e.latency`); the
corpus is made once. ``--transport`` runs the phase with no worker instead, timing each message
from its publish to its delivery (:func:`processor.bench.e2e.transport_latency`). Prints each
run's p50 and p99 (with the worker, the bench's CPU line: worker, nats-server, this process, how
busy the cores were) and the median p99. Not a test: run it as

    python tests/bench/latency_runs.py --rate 8000 [--runs 5] [--list-size 1] \\
        [--mix production] [--transport] [--policies policies/kubernetes/apps-deployments.yaml]
"""

from __future__ import annotations

import argparse
import statistics

from processor.bench.corpus import generate
from processor.bench.corpus.vocab import MIXES
from processor.bench.e2e import Corpus, cpu_line, latency, transport_latency
from processor.policy.bundled import bundled_policy_dir

SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, required=True, help="records/s")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--list-size", type=int, default=1, help="records per message")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=sorted(MIXES), default="standard")
    parser.add_argument(
        "--transport", action="store_true", help="no worker: nats-server alone (publish->delivery)"
    )
    parser.add_argument("--policies", nargs="+", default=[str(bundled_policy_dir())])
    args = parser.parse_args()
    corpus = Corpus(list(generate(int(args.rate * SECONDS) + 1, args.seed, mix=args.mix)))
    p99s = []
    for run in range(1, args.runs + 1):
        if args.transport:
            r = transport_latency(corpus, args.rate, SECONDS, args.list_size)
            timed, lines = f"{r['messages']:.0f} messages", []
        else:
            r = latency(corpus, args.rate, args.policies, SECONDS, args.list_size)
            timed, lines = f"{r['samples']:.0f} activities", cpu_line(r)
        p99s.append(r["p99_ms"])
        print(
            f"run {run}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms ({timed})",
            *lines,
            sep="\n",
            flush=True,
        )
    print(f"median p99 of {len(p99s)} runs: {statistics.median(p99s):.1f} ms")


if __name__ == "__main__":
    main()
