"""aiokafka for Locust: :class:`natsbridge.Bridge`'s loop thread, publishing to Kafka instead.

Messages go to the input topics' partitions as every producer must send them
(:mod:`processor.kafka.produce`): the partition the workers' partition function names (the feed
computed it), keyed by that function's input for a single record; an ``EventList`` holds several
objects and goes without a key, as ``activity ingest --kafka-brokers`` sends it. A consumer
outside any group reads the activity topic from its end and times each activity of a record this
process published, as the NATS bridge does on ``activities.>``.

Results are the NATS bridge's tuples with the request type ``kafka``:
``("kafka", "<kind> p<N>", start, ms, records, error)`` per send, ``ms`` until the brokers'
acknowledgement (``acks=all``).
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
from natsbridge import Bridge

from processor.kafka.settings import (
    ACTIVITY_TOPIC,
    AUDIT_TOPIC,
    DEFAULT_COMPRESSION,
    EVENT_TOPIC,
)


class KafkaBridge(Bridge):
    """A Kafka producer and activity consumer on their own event loop thread.

    Args:
        brokers: bootstrap servers, comma separated.
        partitions: the input topics' partition count.
        audit_topic, event_topic: where audit messages and Events go.
        activity_topic: where the workers publish activities.
        max_in_flight: sends awaiting their acknowledgement before :meth:`publish` refuses more.
        compression: the codec of the record batches (docs/kafka.md#compression).
    """

    def __init__(
        self,
        brokers: str,
        partitions: int,
        audit_topic: str = AUDIT_TOPIC,
        event_topic: str = EVENT_TOPIC,
        activity_topic: str = ACTIVITY_TOPIC,
        max_in_flight: int = 5000,
        compression: str = DEFAULT_COMPRESSION,
    ) -> None:
        super().__init__(brokers, activity_topic, max_in_flight)
        self.partitions = partitions
        self.audit_topic = audit_topic
        self.event_topic = event_topic
        self.compression = compression
        self._producer: Any = None

    async def _main(self) -> None:
        from aiokafka import AIOKafkaConsumer

        from processor.kafka.produce import new_producer

        self._stop = asyncio.Event()
        servers = [u.strip() for u in self.url.split(",") if u.strip()]
        self._producer = new_producer(servers, self.compression, client_id="activity-loadtest")
        await self._producer.start()
        consumer = AIOKafkaConsumer(
            self.activity_subject,
            bootstrap_servers=servers,
            group_id=None,
            auto_offset_reset="latest",
        )
        await consumer.start()
        self._ready = True
        sweeper = asyncio.ensure_future(self._sweep())
        reader = asyncio.ensure_future(self._read(consumer))
        try:
            await self._stop.wait()
        finally:
            sweeper.cancel()
            reader.cancel()
            await asyncio.gather(sweeper, reader, return_exceptions=True)
            await self._producer.stop()
            await consumer.stop()

    async def _read(self, consumer: Any) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for records in batches.values():
                for record in records:
                    await self._on_activity(SimpleNamespace(data=record.value))

    async def _publish(
        self,
        subject: str,
        payload: bytes,
        name: str,
        partition: int,
        ids: list[str],
        wall: float,
        started: float,
    ) -> None:
        from processor.kafka.route import route

        for origin in ids:
            self._sent[origin] = (partition, started)
        event = subject.startswith("events.")
        key = None
        if not name.startswith("list "):  # one object: keyed by the partition function's input
            key, _ = route(orjson.loads(payload), "event" if event else "audit", self.partitions)
        error: Exception | None = None
        try:
            topic = self.event_topic if event else self.audit_topic
            await self._producer.send_and_wait(topic, payload, key=key, partition=partition)
        except Exception as exc:
            error = exc
        ms = (time.perf_counter() - started) * 1000
        self.results.append(("kafka", name, wall, ms, len(ids), error))
        self.completed += 1
