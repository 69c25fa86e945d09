"""The Kafka worker against the raw aiokafka loop on single records, per codec, in one run.

The target (issue 27): the worker at least 0.8x the raw ``getmany`` + commit loop on the
production mix, single records. Each phase runs on a fresh tansu broker
(:func:`processor.bench.kafka.raw_phase`, :func:`~processor.bench.kafka.kafka_worker_rate`);
the ratio is taken within a round, so the load of other sessions moves both sides. Beside it,
each side's CPU per record (all its threads, from ``/proc`` over the timed window) and their
ratio: what the rate ratio would be if each side had a core to itself, which the load moves
less::

    python tests/bench/kafka_singles.py --count 200000 --codecs none,zstd --rounds 2
"""

from __future__ import annotations

import argparse
import os

from processor.bench import generate
from processor.bench.e2e import Corpus
from processor.bench.harness import default_policy_paths
from processor.bench.kafka import PARTITIONS, kafka_messages, kafka_worker_rate, raw_phase
from processor.kafka.settings import KafkaSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--mix", default="production")
    parser.add_argument("--codecs", default="none,zstd", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    corpus = Corpus(list(generate(args.count, 1, mix=args.mix)))
    singles = kafka_messages(corpus, 1, KafkaSettings(partitions=PARTITIONS))
    policies = [str(p) for p in default_policy_paths()]
    print(
        "round codec      raw/s   worker/s  ratio  worker CPU  raw us/rec  worker us/rec"
        "  CPU ratio  load"
    )
    for rnd in range(args.rounds):
        for codec in args.codecs.split(","):
            base = raw_phase(singles, codec)
            raw = base["records_per_s"]
            worker = kafka_worker_rate(singles, args.count, policies, codec)
            rate = worker["records_per_s"]
            raw_us = _us_per_record(base["client_cpu_pct"], raw)
            worker_us = _us_per_record(worker["worker_cpu_pct"], rate)
            print(
                f"{rnd:5d} {codec:5s} {raw:10,.0f} {rate:10,.0f} {rate / raw:6.2f}x"
                f" {worker['worker_cpu_pct']:9.0f}% {raw_us:11.1f} {worker_us:14.1f}"
                f" {raw_us / worker_us:9.2f}x {os.getloadavg()[0]:5.1f}",
                flush=True,
            )


def _us_per_record(cpu_pct: float, records_per_s: float) -> float:
    """Microseconds of CPU per record of a side that used ``cpu_pct`` of a core."""
    return cpu_pct / 100 / records_per_s * 1e6


if __name__ == "__main__":
    main()
