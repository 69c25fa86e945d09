"""How long ``activity reconcile --transport kafka`` takes to recover its Faust table.

tansu does not compact topics (issue 27), so a reconciler that joins reads every state write in
its partitions' changelog. This bench measures that cost on tansu (from the wheel, on a free
port): a reconciler derives one not-ready transition and keeps it pending (grace 1 h), stops;
``--writes`` more state records (copies of that state under other object names, about 1 KB
each, in their objects' partitions) are appended to the changelog as a long history would have
left them; a reconciler of the same group starts with grace 0. Printed: the seconds from its
partition assignment to the pending Event's publication (recovery of the table plus one tick),
per run, and the changelog records read per second. Not a test: run it as

    python -m tests.bench.reconciler_recovery [--writes 0 20000 100000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import orjson

from processor.kafka.broker import TansuBroker
from processor.kafka.produce import new_producer
from processor.kafka.reconcile import KafkaReconciler, TableStateStore, object_partition
from processor.kafka.topics import ensure_topics
from processor.reconciler.settings import ReconcilerSettings
from tests.integration import reconciler_records as rr
from tests.integration.kafka_worker_tools import unique_topics
from tests.integration.reconciler_tools import NOT_FOUND, SPEC


def published(reconciler: KafkaReconciler) -> float:
    value = reconciler.metrics.registry.get_sample_value(
        "activity_reconciler_events_published_total", {"kind": "Circuit"}
    )
    return value or 0.0


async def until(predicate: object, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the bench did not finish")
        await asyncio.sleep(0.01)


async def one_run(brokers: str, partitions: int, writes: int) -> float:
    kafka = unique_topics(brokers, partitions)
    await ensure_topics(kafka)
    base: dict[str, Any] = {
        "partition_count": partitions,
        "consumer_name": f"recovery-{uuid.uuid4().hex[:8]}",
        "health_addr": "",
    }
    producer = new_producer(brokers)
    await producer.start()
    try:
        first = ReconcilerSettings(grace=3600.0, **base)
        waiting = KafkaReconciler(first, kafka)
        await waiting.start()
        records = [
            rr.create("Circuit", "ams-fra-1", SPEC, seq=1, rv=10),
            rr.status_patch("Circuit", "ams-fra-1", [NOT_FOUND], seq=2, rv=11, spec=SPEC),
        ]
        for record in records:
            await producer.send_and_wait(
                kafka.audit_topic,
                orjson.dumps(record),
                partition=object_partition("Circuit", "ams-fra-1", partitions),
            )
        pending = waiting.metrics.registry.get_sample_value
        await until(lambda: pending("activity_reconciler_pending_events", {}) == 1)
        store = waiting.store
        assert isinstance(store, TableStateStore)
        template = orjson.loads(store.table.data[b"circuit.ams-fra-1"])
        template["pending"] = []
        changelog = store.topic
        await waiting.stop()
        futures = []
        for i in range(writes):
            name = f"circuit-{i}"
            state = dict(template, name=name)
            futures.append(
                await producer.send(
                    changelog,
                    orjson.dumps(state),
                    key=f"circuit.{name}".encode(),
                    partition=object_partition("Circuit", name, partitions),
                )
            )
        for future in futures:
            await future
        reconciler = KafkaReconciler(ReconcilerSettings(grace=0.0, **base), kafka)
        await reconciler.start()
        await until(lambda: bool(reconciler.app.consumer.assignment()))
        assigned = time.monotonic()
        await until(lambda: published(reconciler) == 1)
        done = time.monotonic()
        await reconciler.stop()
        return done - assigned
    finally:
        await producer.stop()


async def main(writes: list[int], partitions: int) -> None:
    with TansuBroker() as broker:
        print(f"{'changelog writes':>16}  {'s from assignment to publish':>28}  {'writes/s':>9}")
        for n in writes:
            seconds = await one_run(broker.bootstrap, partitions, n)
            rate = f"{n / seconds:,.0f}" if n else "-"
            print(f"{n:>16,}  {seconds:>28.2f}  {rate:>9}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, nargs="+", default=[0, 20000, 100000])
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.writes, args.partitions))
