"""``activity bench --e2e``: end-to-end throughput and latency of one worker process.

Everything runs on this machine: the bundled nats-server, one ``activity run`` worker process with
chDB, and this process as producer and observer. Phases, each on a fresh nats-server:

1. baseline: the stock nats-py loop (``pull_subscribe`` + ``fetch(100)`` + ``ack()``) and the
   project's raw pull consumer (no processing) over the single-record messages;
2. worker throughput with EventList messages of ``--list-size`` records, then with single-record
   messages: the corpus is published first; the rate is measured from the worker's readiness to
   its last record translated (``partition_records_total``), and the run waits until every record
   is committed and acked (``records_committed_total``), reported as the drain time, with the CPU
   the worker (all its threads, chDB's included), nats-server and this process used while it
   translated. The last ClickHouse batch waits up to ``batch_max_age`` (1 s) before it commits:
   a fixed delay at the end, not a throughput limit, which would otherwise halve the rate of a
   run this short;
3. live capacity: single records published *live* (this process publishing while the worker
   consumes, as in production) on a ladder of rates, :data:`LADDER` times the drained rate,
   :data:`STEP_SECONDS` each; the capacity is the highest rate the worker kept up with (its
   backlog at the end of the step under a quarter second of input). On this 2-core machine
   live input costs more than a drain: nats-server stores and delivers each record as it comes
   and the producer runs too, so the live capacity is well below the drained rate;
4. latency: single records published at half the live capacity (or ``--latency-rate``), timed
   from publish to the activity arriving on ``activities.>`` (matched by ``spec.origin.id``);
   then again at half the *drained* rate, and with EventList messages of ``--list-size`` at half
   their drained rate (each record timed from its list's publish), reported beside it. This
   process's heap (the corpus) is frozen meanwhile (``gc.freeze``), so its own full collections
   do not show up as latency.
   Each latency phase also reports the CPU that the worker, nats-server and this process used
   while publishing, and how busy the machine's cores were (and how much the hypervisor took):
   the figures share the cores, so a tail is read against them (:mod:`processor.bench.cpu`);
5. the transport alone: the first latency phase and the EventList one again with no worker,
   the messages delivered to a consumer that only acks (:mod:`processor.bench.transport`): the
   latency nats-server and the loopback add at those rates, printed under each.

The stores (JetStream, chDB) live in the system's temporary directory: ``TMPDIR=/dev/shm``
puts them in memory, which leaves the virtual disk's I/O out of the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from processor.bench import transport
from processor.bench.corpus import generate
from processor.bench.cpu import CpuWindow
from processor.bench.local import free_port, http_status
from processor.bench.paced import Message, p50_p99, publish_paced
from processor.errors import ProcessorError
from processor.service import frozen_heap
from processor.stream.connection import tune_client
from processor.stream.consumer import PullConsumer, ack_many
from processor.stream.server import NatsServer
from processor.subjects import audit_partition, event_partition

PARTITIONS = 4


class BenchError(ProcessorError):
    """The run cannot give a meaningful figure (printed as the command's error)."""


@dataclass
class Corpus:
    """The benchmark input as messages."""

    records: list[dict[str, Any]]

    def subject(self, record: dict[str, Any]) -> str:
        if record.get("objectRef") is None:
            return f"events.p{event_partition(record, PARTITIONS)}"
        part = audit_partition(record, PARTITIONS)
        return f"audit.k8s.p{part}"

    def singles(self) -> list[tuple[str, bytes]]:
        return [(subject, payload) for _, subject, payload in self.messages(1)]

    def lists(self, size: int) -> list[tuple[str, bytes]]:
        return [(subject, payload) for _, subject, payload in self.messages(size)]

    def messages(self, size: int) -> list[Message]:
        """The records as messages: audit records in EventLists of ``size`` per partition subject
        (each record as itself when ``size`` is 1), Kubernetes Events one per message; each with
        the origin ids of its records (what their activities carry as ``spec.origin.id``)."""
        out: list[Message] = []
        pending: dict[str, list[dict[str, Any]]] = {}
        for record in self.records:
            subject = self.subject(record)
            if size == 1 or subject.startswith("events."):
                out.append(([_origin(record)], subject, orjson.dumps(record)))
                continue
            items = pending.setdefault(subject, [])
            items.append(record)
            if len(items) == size:
                out.append(([_origin(r) for r in items], subject, _event_list(items)))
                pending[subject] = []
        out.extend(
            ([_origin(r) for r in items], s, _event_list(items))
            for s, items in pending.items()
            if items
        )
        return out


def _origin(record: dict[str, Any]) -> str:
    return str(record.get("auditID") or (record.get("metadata") or {}).get("uid", ""))


def _event_list(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


#: PubAcks awaited at once by :func:`_publish`, in messages and in bytes. nats-server queues a
#: stream's incoming messages up to a limit and answers ``429 too many requests`` past it: a
#: window of 2000 EventLists of 100 production records (about 300 MB) went past it.
PUBLISH_WINDOW = 2000
PUBLISH_WINDOW_BYTES = 8 * 1024 * 1024
#: Retries of a window's 429 answers (with back-off) before the bench gives up.
PUBLISH_RETRIES = 20


def publish_windows(
    messages: list[tuple[str, bytes]],
    window: int = PUBLISH_WINDOW,
    window_bytes: int = PUBLISH_WINDOW_BYTES,
) -> Iterator[list[tuple[str, bytes]]]:
    """``messages`` in runs of at most ``window`` messages and ``window_bytes`` bytes of payload
    (a larger message alone)."""
    run: list[tuple[str, bytes]] = []
    size = 0
    for message in messages:
        if run and (len(run) >= window or size + len(message[1]) > window_bytes):
            yield run
            run, size = [], 0
        run.append(message)
        size += len(message[1])
    if run:
        yield run


async def _publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish ``messages`` and wait until the stream stored each, a bounded window at a time;
    what nats-server refuses with 429 (its ingest queue full) is published again after a pause."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        for run in publish_windows(messages):
            delay = 0.05
            for _ in range(PUBLISH_RETRIES):
                futures = [await js.publish_async(s, p) for s, p in run]
                results = await asyncio.gather(*futures, return_exceptions=True)
                busy = [m for m, r in zip(run, results, strict=True) if _too_many(r)]
                for r in results:
                    if isinstance(r, BaseException) and not _too_many(r):
                        raise r
                if not busy:
                    break
                run = busy
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            else:
                raise BenchError(f"nats-server kept answering 429 to {len(run)} publishes")
    finally:
        await nc.drain()


def _too_many(result: object) -> bool:
    """A PubAck of ``429 too many requests`` (the stream's ingest queue is full)."""
    from nats.js.errors import APIError

    return isinstance(result, APIError) and result.code == 429


# -- baselines ---------------------------------------------------------------------------------
async def stock_fetch_rate(url: str, messages: list[tuple[str, bytes]]) -> float:
    """Messages/s of nats-py's own fetch(100)+ack loop over ``messages``."""
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCH_STOCK", subjects=["bench.stock.>"])
    await _publish(url, [("bench.stock.x", p) for _, p in messages])
    sub = await js.pull_subscribe("bench.stock.>", durable="stock", stream="BENCH_STOCK")
    got, started = 0, time.perf_counter()
    while got < len(messages):
        for msg in await sub.fetch(100, timeout=5):
            await msg.ack()
            got += 1
    elapsed = time.perf_counter() - started
    await nc.drain()
    return got / elapsed


async def raw_consumer_rate(url: str, messages: list[tuple[str, bytes]]) -> float:
    """Messages/s of the project's pull consumer with batched acks, no processing."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    tune_client()  # the worker's read size (after the stock baseline, which keeps nats-py's)
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name="BENCH_RAW", subjects=["bench.raw.>"])
    await _publish(url, [("bench.raw.x", p) for _, p in messages])
    await js.add_consumer(
        "BENCH_RAW",
        ConsumerConfig(durable_name="raw", ack_policy=AckPolicy.EXPLICIT, max_ack_pending=100_000),
    )
    done = asyncio.Event()
    count = 0

    async def on_batch(deliveries: list[Any]) -> None:
        nonlocal count
        await ack_many(nc, deliveries)
        count += len(deliveries)
        if count >= len(messages):
            done.set()

    consumer = PullConsumer(nc, "BENCH_RAW", "raw", on_batch, batch=256)
    started = time.perf_counter()
    await consumer.start()
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    await nc.drain()
    return count / elapsed


@contextlib.contextmanager
def fresh_server(prefix: str) -> Iterator[tuple[str, Path, NatsServer]]:
    """A nats-server in a new temporary directory: yields (url, directory, server)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = NatsServer(Path(tmp) / "nats")
        url = server.start()
        try:
            yield url, Path(tmp), server
        finally:
            server.stop()


# -- the worker --------------------------------------------------------------------------------
@contextlib.contextmanager
def worker_process(url: str, data: Path, policies: list[str], port: int) -> Iterator[Any]:
    """An ``activity run`` process; yields it once /readyz answers."""
    cmd = [
        sys.executable,
        "-m",
        "processor",
        "run",
        "--nats-url",
        url,
        "--clickhouse-url",
        f"chdb://{data / 'chdb'}",
        "--health-addr",
        f"127.0.0.1:{port}",
        "--partition-count",
        str(PARTITIONS),
        "--policy-bucket",
        "",
        "--log-level",
        "WARNING",
        "--policies",
        *policies,
    ]
    log = open(data / "worker.log", "ab")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {data / 'worker.log'}")
            time.sleep(0.02)
        yield proc
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def worker_rate(
    messages: list[tuple[str, bytes]], records: int, policies: list[str]
) -> tuple[float, float]:
    """(records/s, drain seconds) of one worker draining ``messages`` (:func:`worker_phase`)."""
    phase = worker_phase(messages, records, policies)
    return phase["records_per_s"], phase["drain_s"]


def worker_phase(
    messages: list[tuple[str, bytes]], records: int, policies: list[str]
) -> dict[str, float]:
    """One worker draining ``messages``, published before it starts: ``records_per_s``,
    ``drain_s`` and the CPU of the worker, nats-server and this process while it translated
    (:class:`~processor.bench.cpu.CpuWindow`; the worker's threads together, chDB's included).

    The rate runs from the first reading of the worker's metrics once it is ready (it may have
    translated part of the corpus by then: those records are left out) to the last record
    translated; the drain time to the last one committed.
    """
    with fresh_server("bench-e2e-") as (url, tmp, server):
        asyncio.run(_provision_and_publish(url, messages))
        port = free_port()
        with worker_process(url, tmp, policies, port) as worker:
            pids = {"worker": worker.pid, "bench": os.getpid()}
            if server.pid is not None:
                pids["nats_server"] = server.pid
            cpu = CpuWindow(pids)
            cpu.start()
            first, started = metric_total(port, PROCESSED), time.perf_counter()
            if first > records / 2:
                raise BenchError(
                    f"the worker translated {first:,.0f} of {records:,} records before it could "
                    "be timed: use a larger --count"
                )
            count = wait_for_total(lambda: metric_total(port, PROCESSED), records, first)
            rate = (count - first) / (time.perf_counter() - started)
            used = cpu.stop()
            while metric_total(port, COMMITTED) < records:
                time.sleep(0.02)
            return {
                "records_per_s": rate,
                "drain_s": time.perf_counter() - started,
                **used,
            }


async def _provision_and_publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    import nats

    from processor.stream.topology import ensure_streams

    nc = await nats.connect(url)
    await ensure_streams(nc.jetstream())
    await nc.drain()
    await _publish(url, messages)


PROCESSED = "activity_processor_partition_records_total"
COMMITTED = "activity_processor_records_committed_total"


def metric_total(port: int, name: str) -> float:
    """The sum of counter ``name`` over its labels, from the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name)] in " {":
            total += float(line.rsplit(" ", 1)[1])
    return total


#: Bounds of :func:`wait_for_total`'s pause between two readings, in seconds.
POLL_MIN, POLL_MAX = 0.02, 0.25


def wait_for_total(read: Callable[[], float], target: float, first: float) -> float:
    """Read a counter with ``read`` until it reaches ``target``; its last reading.

    Each reading renders the worker's whole ``/metrics`` (about 1 ms of its CPU), so readings
    every 20 ms would take about 5% of the core being measured: the pause is half the time the
    counter's rate since ``first`` says is left, between :data:`POLL_MIN` and :data:`POLL_MAX`,
    so the end is still read within 20 ms.
    """
    started = time.perf_counter()
    while (count := read()) < target:
        elapsed = time.perf_counter() - started
        rate = (count - first) / elapsed if elapsed > 0 else 0.0
        left = (target - count) / rate if rate > 0 else POLL_MAX
        time.sleep(min(POLL_MAX, max(POLL_MIN, left / 2)))
    return count


# -- live capacity -----------------------------------------------------------------------------
#: The rates tried for the live capacity, as fractions of the drained single-record rate.
LADDER = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
STEP_SECONDS = 3.0


def live_capacity(corpus: Corpus, drained: float, policies: list[str]) -> tuple[float, str]:
    """Records/s of the highest :data:`LADDER` rate one worker keeps up with, published live, and
    what ended the ladder: ``worker`` (it fell behind), ``producer`` (this process could not
    publish faster) or ``none`` (it kept up with the drained rate)."""
    with fresh_server("bench-cap-") as (url, tmp, _server):
        port = free_port()
        with worker_process(url, tmp, policies, port):
            return asyncio.run(_capacity(url, port, corpus, drained))


async def _capacity(url: str, port: int, corpus: Corpus, drained: float) -> tuple[float, str]:
    import nats

    nc = await nats.connect(url)
    records = corpus.singles()
    best, offset, limit = 0.0, 0, "none"
    with frozen_heap():
        for fraction in LADDER:
            rate = drained * fraction
            count = int(rate * STEP_SECONDS)
            step = [records[(offset + i) % len(records)] for i in range(count)]
            offset += count
            before = await asyncio.to_thread(metric_total, port, PROCESSED)
            achieved = await _publish_at(nc, step, rate)
            await asyncio.sleep(0.25)
            done = await asyncio.to_thread(metric_total, port, PROCESSED) - before
            if achieved < rate * 0.95:
                limit = "producer"
                break
            if count - done > rate / 4:
                limit = "worker"
                break  # it fell behind: the previous step is the answer
            best = rate
            while await asyncio.to_thread(metric_total, port, PROCESSED) - before < count:
                await asyncio.sleep(0.05)
    await nc.drain()
    if not best:
        raise BenchError(f"no live rate kept up with, from {drained * LADDER[0]:,.0f} records/s")
    return best, limit


async def _publish_at(nc: Any, messages: list[tuple[str, bytes]], rate: float) -> float:
    """Publish ``messages`` (core NATS) at ``rate`` per second in 10 ms ticks; the rate achieved."""
    tick, per_tick = 0.01, max(1, int(rate * 0.01))
    started = time.perf_counter()
    for i in range(0, len(messages), per_tick):
        for subject, payload in messages[i : i + per_tick]:
            await nc.publish(subject, payload)
        delay = started + (i // per_tick + 1) * tick - time.perf_counter()
        await asyncio.sleep(max(delay, 0))
    await nc.flush()
    return len(messages) / (time.perf_counter() - started)


# -- latency -----------------------------------------------------------------------------------
def latency(
    corpus: Corpus, rate: float, policies: list[str], seconds: float, list_size: int = 1
) -> dict[str, float]:
    """p50/p99 ms from publish to the activity on ``activities.>`` at ``rate`` records/s (in
    messages of ``list_size`` records), and the CPU the worker, nats-server, this process and
    the machine used while publishing."""
    with (
        fresh_server("bench-lat-") as (url, tmp, server),
        worker_process(url, tmp, policies, free_port()) as worker,
    ):
        pids = {"worker": worker.pid, "bench": os.getpid()}
        if server.pid is not None:
            pids["nats_server"] = server.pid
        messages = _phase_messages(corpus, rate, seconds, list_size)
        return asyncio.run(_latency(url, messages, rate, CpuWindow(pids)))


def transport_latency(
    corpus: Corpus, rate: float, seconds: float, list_size: int = 1
) -> dict[str, float]:
    """The same phase with no worker (:mod:`processor.bench.transport`): p50/p99 ms from publish
    to delivery, the floor nats-server and the loopback put under the worker's latency."""
    with fresh_server("bench-transport-") as (url, _tmp, _server):
        messages = _phase_messages(corpus, rate, seconds, list_size)
        try:
            return transport.latency(url, messages, rate, PARTITIONS)
        except RuntimeError as exc:
            raise BenchError(str(exc)) from exc


def _phase_messages(corpus: Corpus, rate: float, seconds: float, list_size: int) -> list[Message]:
    # a corpus shorter than rate x seconds makes the phase shorter (the samples say so)
    return Corpus(corpus.records[: int(rate * seconds)]).messages(list_size)


async def _latency(
    url: str, messages: list[Message], rate: float, cpu: CpuWindow
) -> dict[str, float]:
    """Publish ``messages`` (made before the clock starts: the bench shares the two cores with
    the worker and nats-server, so it does as little as it can while they are timed) in 10 ms
    ticks, each tick up to ``rate`` records/s so far; time each record to its activity."""
    import nats

    nc = await nats.connect(url)
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}

    async def on_activity(msg: Any) -> None:
        origin = orjson.loads(msg.data)["spec"]["origin"]["id"]
        seen[origin] = time.perf_counter()

    def stamp(origins: list[str], _subject: str) -> None:
        now = time.perf_counter()
        for origin in origins:
            sent[origin] = now

    await nc.subscribe("activities.>", cb=on_activity)
    with frozen_heap():
        cpu.start()
        await publish_paced(nc, messages, rate, stamp)
        used = cpu.stop()
        await asyncio.sleep(3)
        await nc.drain()
    lat = [(seen[k] - sent[k]) * 1000 for k in seen if k in sent]
    return {**p50_p99(lat), "samples": float(len(lat)), **used}


# -- the run -----------------------------------------------------------------------------------
def run(
    count: int,
    seed: int,
    list_size: int,
    policies: list[str],
    latency_rate: float | None = None,
    mix: str = "standard",
) -> dict[str, Any]:
    """All phases over ``count`` records of the corpus ``mix``; returns the figures (records/s,
    ratios, latency).

    The latency phase runs at ``latency_rate`` records/s, by default half the live capacity, and
    again at half the drained single-record rate.
    """
    corpus = Corpus(list(generate(count, seed, mix=mix)))
    singles = corpus.singles()
    with fresh_server("bench-base-") as (url, _tmp, _server):
        stock = asyncio.run(stock_fetch_rate(url, singles))
        raw = asyncio.run(raw_consumer_rate(url, singles))
    lists_phase = worker_phase(corpus.lists(list_size), count, policies)
    singles_phase = worker_phase(singles, count, policies)
    batched, batched_drain = lists_phase["records_per_s"], lists_phase["drain_s"]
    single, single_drain = singles_phase["records_per_s"], singles_phase["drain_s"]
    capacity, limit = live_capacity(corpus, single, policies)
    rate = latency_rate or capacity / 2
    lat = latency(corpus, rate, policies, seconds=10)
    at_drained = latency(corpus, single / 2, policies, seconds=10)
    at_lists = latency(corpus, batched / 2, policies, seconds=10, list_size=list_size)
    floor = transport_latency(corpus, rate, seconds=10)
    floor_lists = transport_latency(corpus, batched / 2, seconds=10, list_size=list_size)
    return {
        "records": count,
        "mix": mix,
        "stock_fetch_ack_msgs_per_s": stock,
        "raw_pull_consumer_msgs_per_s": raw,
        "worker_eventlist_records_per_s": batched,
        "worker_eventlist_drain_s": batched_drain,
        "worker_single_records_per_s": single,
        "worker_single_drain_s": single_drain,
        "single_vs_stock": single / stock,
        **_cpu_figures(lists_phase, "eventlist_drain_"),
        **_cpu_figures(singles_phase, "single_drain_"),
        "live_capacity_records_per_s": capacity,
        "live_capacity_limit": limit,
        "latency_rate_records_per_s": rate,
        **lat,
        "half_drained_rate_records_per_s": single / 2,
        **{f"half_drained_{k}": v for k, v in at_drained.items()},
        "half_eventlist_rate_records_per_s": batched / 2,
        **{f"half_eventlist_{k}": v for k, v in at_lists.items()},
        **{f"transport_{k}": v for k, v in floor.items()},
        **{f"half_eventlist_transport_{k}": v for k, v in floor_lists.items()},
    }


def _cpu_figures(phase: dict[str, float], prefix: str) -> dict[str, float]:
    """The CPU figures of a :func:`worker_phase`, their names prefixed."""
    return {f"{prefix}{k}": v for k, v in phase.items() if k.endswith("_pct") or k == "cores"}


def format_table(figures: dict[str, Any], list_size: int) -> str:
    """The figures as the table printed by ``activity bench --e2e``."""
    stock = figures["stock_fetch_ack_msgs_per_s"]
    rows = [
        ("nats-py fetch(100)+ack, no processing (baseline)", stock),
        (
            "project pull consumer + batched acks, no processing",
            figures["raw_pull_consumer_msgs_per_s"],
        ),
        (f"worker, EventList messages of {list_size}", figures["worker_eventlist_records_per_s"]),
        ("worker, single-record messages", figures["worker_single_records_per_s"]),
    ]
    lines = [
        f"corpus: {figures['records']:,} records, {figures.get('mix', 'standard')} mix",
        f"{'path':<56} {'records/s':>12} {'vs baseline':>12}",
    ]
    for (name, rate), cpu in zip(rows, ("", "", "eventlist_drain_", "single_drain_"), strict=True):
        lines.append(f"{name:<56} {rate:>12,.0f} {rate / stock:>11.2f}x")
        if cpu:
            lines += cpu_line(figures, cpu)
    lines.append(
        f"worker rates run to the last record translated; all committed and acked after "
        f"{figures['worker_eventlist_drain_s']:.2f} s (lists) and "
        f"{figures['worker_single_drain_s']:.2f} s (single records), the last batch after "
        "up to --batch-max-age"
    )
    limit = figures["live_capacity_limit"]
    ended = f"next step: {limit} fell behind" if limit != "none" else "kept up at the drained rate"
    lines.append(
        f"live capacity (single records published while consumed): "
        f"{figures['live_capacity_records_per_s']:,.0f} records/s ({ended})"
    )
    lines.append(
        f"latency publish -> ACTIVITIES at {figures['latency_rate_records_per_s']:,.0f} records/s: "
        f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms "
        f"({figures['samples']:.0f} activities)"
    )
    lines += cpu_line(figures)
    lines += transport_line(figures)
    lines.append(
        f"latency at half the drained rate, {figures['half_drained_rate_records_per_s']:,.0f} "
        f"records/s: p50 {figures['half_drained_p50_ms']:.1f} ms, "
        f"p99 {figures['half_drained_p99_ms']:.1f} ms "
        f"({figures['half_drained_samples']:.0f} activities)"
    )
    lines += cpu_line(figures, "half_drained_")
    if "half_eventlist_p99_ms" in figures:
        lines.append(
            f"latency with EventLists of {list_size} at half their rate, "
            f"{figures['half_eventlist_rate_records_per_s']:,.0f} records/s: "
            f"p50 {figures['half_eventlist_p50_ms']:.1f} ms, "
            f"p99 {figures['half_eventlist_p99_ms']:.1f} ms "
            f"({figures['half_eventlist_samples']:.0f} activities)"
        )
        lines += cpu_line(figures, "half_eventlist_")
        lines += transport_line(figures, "half_eventlist_")
    return "\n".join(lines)


def transport_line(figures: dict[str, Any], prefix: str = "") -> list[str]:
    """The transport's own latency at a phase's rate (one line, or none if not measured)."""
    p99 = figures.get(f"{prefix}transport_p99_ms")
    if p99 is None:
        return []
    return [
        "  nats-server alone at that rate (no worker; a consumer that only acks): "
        f"p50 {figures[f'{prefix}transport_p50_ms']:.1f} ms, p99 {p99:.1f} ms"
    ]


def cpu_line(figures: dict[str, Any], prefix: str = "") -> list[str]:
    """The CPU used while a latency phase published (one line, or none without the figures)."""
    procs = [
        (label, figures.get(f"{prefix}{key}_cpu_pct"))
        for label, key in (("worker", "worker"), ("nats-server", "nats_server"), ("bench", "bench"))
    ]
    parts = [f"{label} {pct:.0f}%" for label, pct in procs if pct is not None]
    busy = figures.get(f"{prefix}system_busy_pct")
    if not parts and busy is None:
        return []
    line = "  CPU meanwhile (% of one core): " + ", ".join(parts)
    if busy is not None:
        cores = figures.get(f"{prefix}cores", 1)
        steal = figures.get(f"{prefix}system_steal_pct", 0.0)
        line += f"; the {cores:.0f} cores {busy:.0f}% busy, {steal:.0f}% stolen by the hypervisor"
    return [line]
