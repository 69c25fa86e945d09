"""Records/s the Kafka reconciler reads, beside a raw aiokafka loop doing its filtering.

Two inputs, each on fresh topics of tansu (from the wheel, a free port):

* **audit**: ``--records`` single audit records of the standard corpus
  (``processor.bench.corpus``, about one in a hundred about an inventory object);
* **Events** (the forwarder of controller Events): ``--events`` Kubernetes Events of the corpus
  (a quarter annotated ``inventory.miloapis.com/event-type``, which the reconciler forwards to
  its controller-events topic).

Then, one after the other, on the same topic from its start:

* ``raw``: an aiokafka consumer (its own group) ``getmany(2000)`` + commit per batch, passing
  every value through the reconciler's input filter (audit: :func:`audit_records` +
  ``observe``; Events: :func:`controller_event_identity` on the annotated ones, which are
  sent to another topic and acknowledged before the commit, as the forwarder does);
* ``reconciler``: ``KafkaReconciler`` (a Faust app in its own group; the topic read in
  ``getmany`` batches on the partitions the group assigned), timed until its message counter
  of that input reached the count.

Each is timed from its partition assignment. Not a test: run it as

    python -m tests.bench.reconciler_rate [--records 50000] [--events 50000] [--partitions 4]
        [--grace 0]
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
from processor.reconciler.inputs import audit_records, controller_event_identity
from processor.reconciler.settings import ReconcilerSettings
from tests.integration.kafka_worker_tools import unique_topics


async def until(predicate: Any, timeout: float = 900.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the bench did not finish")
        await asyncio.sleep(0.01)


_EVENT_TYPE = b"inventory.miloapis.com/event-type"


async def raw(kafka: KafkaSettings, total: int, stream: str = "AUDIT_EVENTS") -> float:
    """Seconds a raw aiokafka loop takes for ``total`` records of the input ``stream``."""
    from aiokafka import AIOKafkaConsumer

    events = stream == "EVENTS"
    consumer = AIOKafkaConsumer(
        kafka.event_topic if events else kafka.audit_topic,
        bootstrap_servers=kafka.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka.consumer_options(),
    )
    producer = new_producer(kafka.bootstrap)
    await consumer.start()
    await producer.start()
    try:
        await until(lambda: bool(consumer.assignment()))
        started, seen, found = time.monotonic(), 0, 0
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            sent = []
            for tp, records in batches.items():
                for record in records:
                    seen += 1
                    if events:
                        value = record.value
                        if _EVENT_TYPE in value and controller_event_identity(orjson.loads(value)):
                            forward = kafka.dead_letter_topic  # any topic of this run's own
                            sent.append(await producer.send(forward, value, partition=tp.partition))
                        continue
                    for item in audit_records(record.value, lambda _exc: None):
                        found += observe(item, FOLLOWED) is not None
            if sent:
                await asyncio.gather(*sent)
            if batches:
                await consumer.commit()
        return time.monotonic() - started
    finally:
        await producer.stop()
        await consumer.stop()


async def reconciler(
    kafka: KafkaSettings, total: int, stream: str = "AUDIT_EVENTS", grace: float = 0.0
) -> float:
    """Seconds the Kafka reconciler takes to read ``total`` records of the input ``stream``."""
    settings = ReconcilerSettings(
        partition_count=kafka.partitions,
        consumer_name=f"rate-{uuid.uuid4().hex[:8]}",
        health_addr="",
        grace=grace,
    )
    service = KafkaReconciler(settings, kafka)
    count = service.metrics.registry.get_sample_value
    await service.start()
    try:
        await until(lambda: bool(service.app.consumer.assignment()))
        started = time.monotonic()
        await until(
            lambda: (count("activity_reconciler_messages_total", {"stream": stream}) or 0) >= total
        )
        return time.monotonic() - started
    finally:
        await service.stop()


async def compare(
    broker: TansuBroker, stream: str, total: int, partitions: int, grace: float
) -> None:
    """Publish ``total`` corpus records of ``stream`` to fresh topics; print both rates."""
    kafka = unique_topics(broker.bootstrap, partitions, group_id=f"raw-{uuid.uuid4().hex[:8]}")
    await ensure_topics(kafka)
    events = stream == "EVENTS"
    payloads = [orjson.dumps(r) for r in generate(total, 1, event_ratio=1.0 if events else 0.0)]
    producer = new_producer(broker.bootstrap)
    await producer.start()
    try:
        topic, source = (kafka.event_topic, "event") if events else (kafka.audit_topic, "audit")
        await send_records(producer, topic, source, partitions, payloads)
    finally:
        await producer.stop()
    size = sum(map(len, payloads)) / len(payloads)
    what = "Events" if events else "audit records"
    print(f"{len(payloads):,} {what} of {size:,.0f} bytes, {partitions} partitions")
    if events:
        forwarded = sum(_EVENT_TYPE in p for p in payloads)
        print(f"  {forwarded:,} of them controller Events (forwarded)")
    base = await raw(kafka, len(payloads), stream)
    ours = await reconciler(kafka, len(payloads), stream, grace)
    print(f"  raw aiokafka getmany + filter: {len(payloads) / base:>9,.0f} records/s")
    print(f"  Kafka reconciler (Faust):      {len(payloads) / ours:>9,.0f} records/s")
    print(f"  ratio reconciler / raw:        {base / ours:>9.2f}x")


async def main(records: int, events: int, partitions: int, grace: float) -> None:
    with TansuBroker() as broker:
        if records:
            await compare(broker, "AUDIT_EVENTS", records, partitions, grace)
        if events:
            await compare(broker, "EVENTS", events, partitions, grace)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="audit records (0: none)")
    parser.add_argument("--events", type=int, default=50_000, help="Kubernetes Events (0: none)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--grace", type=float, default=0.0, help="the reconciler's grace (0: publish per batch)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.records, args.events, args.partitions, args.grace))
