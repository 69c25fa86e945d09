"""Compressed record batches on a real tansu broker (docs/kafka.md#compression): tansu stores
and serves them as produced, the Kafka worker translates records whatever their codec and
publishes its activities with ``--kafka-compression``, and the ingest sends with its own.

The codec of each stored batch is read from the broker with a plain Fetch request (the record
batch header's attributes), not from the producers' settings.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from processor.kafka.broker import TansuBroker
from processor.kafka.worker import KafkaWorker
from processor.sink.memory import MemorySink
from tests.integration import records
from tests.integration.ingest_tools import event_list, running_ingest
from tests.integration.kafka_worker_tools import (
    PARTITIONS,
    committed,
    kafka_settings,
    produce,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration

#: The codec numbers of a record batch's attributes (the Kafka protocol's).
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


async def stored_codecs(brokers: str, topic: str, partitions: int) -> list[str]:
    """The codec of every record batch stored in ``topic``, as the broker serves it."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.protocol.fetch import FetchRequest
    from aiokafka.record.memory_records import MemoryRecords
    from aiokafka.structs import TopicPartition

    client = AIOKafkaClient(bootstrap_servers=brokers)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        codecs = []
        for p in range(partitions):
            node = client.cluster.leader_for_partition(TopicPartition(topic, p))
            request = FetchRequest(100, 1, 16 << 20, 0, [(topic, [(p, 0, 16 << 20)])])
            response = await client.send(node, request)
            for _topic, answers in response.topics:
                for answer in answers:
                    data = answer[-1]  # the partition's records
                    stored = MemoryRecords(bytes(data)) if data else None
                    while stored is not None and (batch := stored.next_batch()) is not None:
                        codecs.append(CODECS[batch.compression_type])
        return codecs
    finally:
        await client.close()


def test_a_worker_translates_compressed_records_and_publishes_compressed(
    kafka_broker: TansuBroker, policy_dir: Path
) -> None:
    """Audit records in zstd batches, Events in gzip ones; the worker publishes with lz4."""
    settings = kafka_settings(kafka_broker, kafka_compression="lz4")
    audits = [records.audit(f"web-{i}", seq=i) for i in range(30)]
    quiet = [records.audit(f"quiet-{i}", verb="get", seq=i) for i in range(10)]
    events = [records.event(f"web-{i}", seq=i) for i in range(6)]
    sink = MemorySink()

    async def run() -> None:
        worker = KafkaWorker(settings, [str(policy_dir)], sink=sink)
        await worker.start()
        try:
            await produce(settings, "audit", audits + quiet, "zstd")
            await produce(settings, "event", events, "gzip")
            pipeline = worker.pipeline
            assert pipeline is not None
            await wait_for(lambda: pipeline.committed_records == 46, what="46 records committed")
            await worker.transport.commit()  # type: ignore[union-attr]
        finally:
            await worker.stop()

    asyncio.run(run())
    brokers = settings.kafka_brokers
    assert set(asyncio.run(stored_codecs(brokers, settings.kafka_audit_topic, PARTITIONS))) == {
        "zstd"
    }
    assert set(asyncio.run(stored_codecs(brokers, settings.kafka_event_topic, PARTITIONS))) == {
        "gzip"
    }
    stored = {orjson.loads(row)["metadata"]["name"] for row in sink.rows("activities")}
    assert len(stored) == 36
    out = asyncio.run(read_topic(settings, settings.kafka_activity_topic, 36))
    assert {orjson.loads(r.value)["metadata"]["name"] for r in out} == stored
    activity_codecs = asyncio.run(stored_codecs(brokers, settings.kafka_activity_topic, PARTITIONS))
    assert activity_codecs and set(activity_codecs) == {"lz4"}
    assert sum(asyncio.run(committed(settings)).values()) == 46


def test_the_ingest_sends_with_its_codec(kafka_broker: TansuBroker) -> None:
    topic = f"audit-ingest-gzip-{id(kafka_broker)}"
    audits = [records.audit(f"web-{i}", seq=i) for i in range(12)]

    async def body() -> list[str]:
        async with running_ingest(
            "nats://127.0.0.1:1",
            kafka_brokers=kafka_broker.bootstrap,
            kafka_audit_topic=topic,
            kafka_compression="gzip",
        ) as c:
            status, summary, _ = await c.post("/audit", event_list(audits))
            assert status == 200, summary
        return await stored_codecs(kafka_broker.bootstrap, topic, PARTITIONS)

    codecs = asyncio.run(body())
    assert codecs and set(codecs) == {"gzip"}
