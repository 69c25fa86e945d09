"""Decoding fetched Kafka record sets of single records, per record: the native decoder, its
twin and aiokafka's own path, side by side.

The records are the production mix (:func:`processor.bench.generate`), one JSON record per Kafka
record keyed as the producers key them (:func:`processor.kafka.route.route`), built by aiokafka's
``DefaultRecordBatchBuilder`` into batches of ``--batch`` records (zstd or none), ``--per-set``
batches per fetched record set. Decoders:

- ``native``: ``processor._native.kafkabatch.decode`` (CRC, decompression, parsing in C);
- ``python``: the twin, ``processor.kafka.batches.decode``;
- ``aiokafka``: what the consumer does per fetched set: its fetcher's ``PartitionRecords`` over
  ``MemoryRecords`` (CRC, cramjam, a ``ConsumerRecord`` per record);
- ``none``: nothing (under callgrind, the instrumentation switching itself, to subtract).

Timed, every decoder in one run (records/s, the median of ``--rounds``; ratios to aiokafka)::

    python tests/bench/callgrind_kafkabatch.py --count 20000

Instructions per record, one decoder per run under callgrind with instrumentation off at start
(the script switches it on around the loop, as ``callgrind_translate.py`` does)::

    valgrind --tool=callgrind --instr-atstart=no \\
        python tests/bench/callgrind_kafkabatch.py --callgrind --decoder native --codec zstd

The loop's ``Collected`` count, less that of ``--decoder none``, divided by the ``records``
printed is the figure per record.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from processor.bench import generate
from processor.kafka import batches as twin
from processor.native import require

CODECS = {"none": 0, "zstd": 4, "lz4": 3, "gzip": 1, "snappy": 2}
DECODERS = ("native", "python", "aiokafka")


@dataclass(slots=True)
class Chunk:
    first: int
    end: int
    left: int


def record_sets(count: int, codec: str, per_batch: int, per_set: int, seed: int) -> list[bytes]:
    """The production mix as fetched record sets."""
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    from processor.kafka.route import route

    records = []
    for record in generate(count, seed, mix="production"):
        source = "audit" if record.get("objectRef") is not None else "event"
        records.append((route(record, source, 6)[0], orjson.dumps(record)))
    batches = []
    for start in range(0, len(records), per_batch):
        builder = DefaultRecordBatchBuilder(2, CODECS[codec], 0, -1, -1, -1, 1 << 30)
        for i, (key, value) in enumerate(records[start : start + per_batch]):
            builder.append(i, 1_700_000_000_000 + start + i, key, value, [])
        data = bytearray(builder.build())
        struct.pack_into(">q", data, 0, start)
        batches.append(bytes(data))
    return [b"".join(batches[i : i + per_set]) for i in range(0, len(batches), per_set)]


def decoder(name: str) -> Callable[[bytes], int]:
    """A function decoding one record set, returning its record count."""
    if name == "none":
        return lambda data: 0
    if name == "aiokafka":
        from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
        from aiokafka.record.memory_records import MemoryRecords
        from aiokafka.structs import TopicPartition

        tp = TopicPartition("audit-events", 0)

        def read(data: bytes) -> int:
            records = PartitionRecords(
                tp, MemoryRecords(data), [], 0, None, None, True, READ_UNCOMMITTED
            )
            return len(list(records))

        return read
    mod: Any = require("kafkabatch") if name == "native" else twin

    def decode(data: bytes) -> int:
        deliveries, corrupt_at, reason = mod.decode(data, 0, "audit-events", 0, True, Chunk)
        if corrupt_at != -1:
            raise SystemExit(f"{name}: corrupt at {corrupt_at}: {reason}")
        return len(deliveries)

    return decode


def instrument(flag: str) -> None:
    """Switch callgrind's instrumentation of this process ``on`` or ``off``."""
    subprocess.run(["callgrind_control", "-i", flag, str(os.getpid())], check=True)
    time.sleep(0.5)  # the tool picks the command up at its next poll


def timed(decode: Callable[[bytes], int], sets: list[bytes], rounds: int) -> tuple[float, int]:
    """(records/s, the median of ``rounds`` passes over ``sets``; records per pass)."""
    rates = []
    n = 0
    for _ in range(rounds):
        start = time.perf_counter()
        n = sum(decode(data) for data in sets)
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--codec", choices=list(CODECS), action="append")
    parser.add_argument("--batch", type=int, default=250, help="records per batch")
    parser.add_argument("--per-set", type=int, default=4, help="batches per fetched set")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--callgrind", action="store_true", help="one decoder, instrumented")
    parser.add_argument("--decoder", choices=[*DECODERS, "none"], default="native")
    args = parser.parse_args()
    codecs = args.codec or ["none", "zstd"]
    if args.callgrind:
        sets = record_sets(args.count, codecs[0], args.batch, args.per_set, args.seed)
        decode = decoder(args.decoder)
        decode(sets[0])  # imports, caches
        instrument("on")
        n = sum(decode(data) for data in sets)
        instrument("off")
        print(f"records={n if args.decoder != 'none' else args.count}", file=sys.stderr)
        return
    print(f"load {os.getloadavg()[0]:.2f}; {args.count} records, batches of {args.batch}")
    print("codec  set KB  " + "".join(f"{name:>12}" for name in DECODERS) + "  native/aiokafka")
    for codec in codecs:
        sets = record_sets(args.count, codec, args.batch, args.per_set, args.seed)
        rates = {}
        for name in DECODERS:
            rate, n = timed(decoder(name), sets, args.rounds)
            if n != args.count:
                raise SystemExit(f"{name} decoded {n} of {args.count} records")
            rates[name] = rate
        size = sum(map(len, sets)) / len(sets) / 1024
        print(
            f"{codec:6} {size:6.0f}  "
            + "".join(f"{rates[name]:10.0f}/s" for name in DECODERS)
            + f"  {rates['native'] / rates['aiokafka']:.1f}x"
        )


if __name__ == "__main__":
    main()
