"""Helpers of the Kafka worker tests: settings of a test's own, producing, reading a topic, the
group's committed offsets (tansu's admin client cannot list them: ``consumer.committed``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from processor.config import Settings
from processor.kafka.broker import TansuBroker
from processor.kafka.produce import new_producer, send_records
from processor.kafka.settings import KafkaSettings

PARTITIONS = 4
_names = itertools.count(1)


def kafka_settings(broker: TansuBroker, **overrides: Any) -> Settings:
    """Settings with topics and a group of this test only."""
    tag = f"{os.getpid()}-{next(_names)}"
    base: dict[str, Any] = {
        "transport": "kafka",
        "kafka_brokers": broker.bootstrap,
        "kafka_group": f"workers-{tag}",
        "kafka_audit_topic": f"audit-{tag}",
        "kafka_event_topic": f"events-{tag}",
        "kafka_activity_topic": f"activities-{tag}",
        "kafka_dead_letter_topic": f"dead-{tag}",
        "kafka_policy_topic": f"policies-{tag}",
        "partition_count": PARTITIONS,
        "batch_max_age": 0.05,
        "health_addr": "127.0.0.1:0",
        "watch_interval": 0.1,
    }
    base.update(overrides)
    return Settings(**base)


def unique_topics(brokers: str, partitions: int, **overrides: Any) -> KafkaSettings:
    """KafkaSettings with topics of this caller only (the broker may be shared)."""
    tag = uuid.uuid4().hex[:8]
    return KafkaSettings(
        brokers=brokers,
        audit_topic=f"audit-{tag}",
        event_topic=f"events-{tag}",
        activity_topic=f"activities-{tag}",
        dead_letter_topic=f"dlq-{tag}",
        policy_topic=f"policies-{tag}",
        partitions=partitions,
        **overrides,
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate``; AssertionError after ``timeout`` (a guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def produce(
    settings: Settings, source: str, items: list[Any], codec: str | None = None
) -> None:
    """Send ``items`` to the ``source`` topic (audit or events) as the ingest would, in batches
    compressed with ``codec`` (None: the producer's default)."""
    options = {} if codec is None else {"compression": codec}
    producer = new_producer(settings.kafka_brokers, **options)
    await producer.start()
    try:
        topic = settings.kafka_audit_topic if source == "audit" else settings.kafka_event_topic
        await send_records(producer, topic, source, settings.partition_count, items)
    finally:
        await producer.stop()


async def read_topic(settings: Settings, topic: str, count: int) -> list[Any]:
    """The first ``count`` records of ``topic`` (all partitions, from the start)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_brokers, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                got.extend(batch)
    finally:
        await consumer.stop()
    return got


async def committed(settings: Settings) -> dict[tuple[str, int], int]:
    """The group's committed offsets of the input topics (``consumer.committed``: tansu's admin
    client cannot list group offsets)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_brokers,
        group_id=settings.kafka_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        out = {}
        for topic in (settings.kafka_audit_topic, settings.kafka_event_topic):
            for p in range(settings.partition_count):
                offset = await consumer.committed(TopicPartition(topic, p))
                out[(topic, p)] = offset or 0
        return out
    finally:
        await consumer.stop()
