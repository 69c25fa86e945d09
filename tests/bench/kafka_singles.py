"""The Kafka worker against the raw aiokafka loop on single records, per codec, in one run.

The target (issue 27): the worker at least 0.8x the raw ``getmany`` + commit loop on the
production mix, single records. Each phase runs on a fresh tansu broker
(:func:`processor.bench.kafka.raw_phase`, :func:`~processor.bench.kafka.kafka_worker_rate`);
the ratio is taken within a round, so the load of other sessions moves both sides::

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
    print("round codec      raw/s   worker/s  ratio  worker CPU  load")
    for rnd in range(args.rounds):
        for codec in args.codecs.split(","):
            raw = raw_phase(singles, codec)["records_per_s"]
            worker = kafka_worker_rate(singles, args.count, policies, codec)
            rate = worker["records_per_s"]
            print(
                f"{rnd:5d} {codec:5s} {raw:10,.0f} {rate:10,.0f} {rate / raw:6.2f}x"
                f" {worker['worker_cpu_pct']:9.0f}% {os.getloadavg()[0]:5.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
