"""The Kafka worker (``activity run --transport kafka``) in-process against a real tansu broker.

Each test uses topics and a consumer group of its own on the session's broker.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor.config import Settings
from processor.kafka.broker import TansuBroker
from processor.kafka.produce import new_producer, send_records
from processor.kafka.worker import KafkaWorker
from processor.sink.chdb import ChdbSink
from tests.integration import records

pytestmark = pytest.mark.integration

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


async def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate``; AssertionError after ``timeout`` (a guard, not a timing)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def produce(settings: Settings, source: str, items: list[Any]) -> None:
    producer = new_producer(settings.kafka_brokers)
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


def activity_rows(sink: ChdbSink) -> list[dict[str, Any]]:
    """The activities as queries see them (``FINAL``: redelivery duplicates collapsed)."""
    sql = f"SELECT activity_name AS name, summary FROM {sink.database}.activities FINAL"
    return list(sink.query(sql))


async def with_worker(
    settings: Settings,
    policy_dir: Path,
    sink: Any,
    body: Callable[[KafkaWorker], Awaitable[None]],
) -> None:
    worker = KafkaWorker(settings, [str(policy_dir)], sink=sink)
    await worker.start()
    try:
        await body(worker)
    finally:
        await worker.stop()


def test_end_to_end_to_chdb(
    kafka_broker: TansuBroker, policy_dir: Path, chdb_sink: ChdbSink
) -> None:
    settings = kafka_settings(kafka_broker)
    audits = [records.audit(f"web-{i}", seq=i) for i in range(40)]
    quiet = [records.audit(f"quiet-{i}", verb="get", seq=i) for i in range(20)]
    events = [records.event(f"web-{i}", seq=i) for i in range(10)]

    async def body(worker: KafkaWorker) -> None:
        await produce(settings, "audit", audits + quiet)
        await produce(settings, "event", events)
        pipeline = worker.pipeline
        assert pipeline is not None
        await wait_for(lambda: pipeline.committed_records == 70, what="70 records committed")
        await worker.transport.commit()  # type: ignore[union-attr]

    asyncio.run(with_worker(settings, policy_dir, chdb_sink, body))
    rows = activity_rows(chdb_sink)
    assert len(rows) == 50
    out = asyncio.run(read_topic(settings, settings.kafka_activity_topic, 50))
    assert len(out) == 50
    headers = [dict(r.headers) for r in out]
    assert {h["id"].decode() for h in headers} == {r["name"] for r in rows}
    assert all(h["subject"].startswith(b"activities.") for h in headers)
    # an activity is in its input record's partition, keyed by the object
    for r in out:
        value = orjson.loads(r.value)
        assert r.key.decode().endswith("/" + value["spec"]["resource"]["name"])
    offsets = asyncio.run(committed(settings))
    assert sum(offsets.values()) == 70  # every input record committed, nothing past the end
