"""``activity ingest --kafka-brokers`` on the tansu broker: records on the topic partitions of the
workers' partition function, bad items on the dead-letter topic."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import orjson

from processor.kafka.broker import TansuBroker
from processor.subjects import audit_partition, event_partition
from tests.integration import records
from tests.integration.ingest_tools import PARTITIONS, event_list, running_ingest


async def _read(broker: TansuBroker, topic: str, count: int) -> list[Any]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20  # a guard, not a timing
        while len(got) < count and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(batch)
    finally:
        await consumer.stop()
    return got


def test_records_go_to_the_topic_partitions_of_the_partition_function(
    kafka_broker: TansuBroker,
) -> None:
    tag = f"ingest-{os.getpid()}"
    topics = {
        "kafka_audit_topic": f"audit-{tag}",
        "kafka_event_topic": f"events-{tag}",
        "kafka_dead_letter_topic": f"dead-{tag}",
    }
    audits = [records.audit(f"web-{i % 7}", seq=i) for i in range(30)]
    events = [records.event(f"web-{i % 3}", seq=i) for i in range(9)]

    async def body() -> tuple[list[Any], list[Any], list[Any]]:
        async with running_ingest(
            "nats://127.0.0.1:1", kafka_brokers=kafka_broker.bootstrap, batch_items=4, **topics
        ) as c:
            status, summary, _ = await c.post(
                "/audit", event_list([*audits[:15], 42, *audits[15:]])
            )
            assert status == 200, summary
            assert (summary["accepted"], summary["rejectedCount"]) == (30, 1)
            listed = {"kind": "EventList", "apiVersion": "events.k8s.io/v1", "items": events}
            status, events_summary, _ = await c.post("/events", listed)
            assert status == 200, events_summary
            assert await c.get("/readyz") == (200, "ok\n")
            text = (await c.get("/metrics"))[1]
            assert 'activity_ingest_requests_total{code="200",source="audit"} 1.0' in text
            lists = sum(-(-n // 4) for n in summary["partitions"].values())
        return (
            await _read(kafka_broker, topics["kafka_audit_topic"], lists),
            await _read(kafka_broker, topics["kafka_event_topic"], events_summary["messages"]),
            await _read(kafka_broker, topics["kafka_dead_letter_topic"], 1),
        )

    audit_messages, event_messages, dead = asyncio.run(body())
    seen = []
    for message in audit_messages:
        doc = orjson.loads(message.value)
        assert doc["kind"] == "EventList" and 1 <= len(doc["items"]) <= 4
        for item in doc["items"]:
            assert audit_partition(item, PARTITIONS) == message.partition
        seen += [i["auditID"] for i in doc["items"]]
        headers = dict(message.headers)
        assert headers["subject"] == f"audit.k8s.p{message.partition}".encode()
        assert headers["id"].startswith(b"ingest-")
    assert sorted(seen) == sorted(r["auditID"] for r in audits)
    items = []
    for message in event_messages:  # Events batched per partition as audit records are
        doc = orjson.loads(message.value)
        assert (doc["kind"], doc["apiVersion"]) == ("EventList", "v1")
        assert 1 <= len(doc["items"]) <= 4
        for item in doc["items"]:
            assert event_partition(item, PARTITIONS) == message.partition
        items += doc["items"]
    assert sorted(i["metadata"]["uid"] for i in items) == sorted(
        e["metadata"]["uid"] for e in events
    )
    for name in {e["regarding"]["name"] for e in events}:  # per-object order
        mine = [i for i in items if i["regarding"]["name"] == name]
        assert mine == [e for e in events if e["regarding"]["name"] == name]
    assert max(len(orjson.loads(m.value)["items"]) for m in event_messages) > 1
    assert [orjson.loads(m.value)["originalPayload"] for m in dead] == [42]


def test_an_unreachable_broker_fails_the_start(tmp_path: Any) -> None:
    from processor.bench.local import free_port
    from processor.kafka.topics import KafkaTopicError

    async def body() -> None:
        try:
            async with running_ingest(
                "nats://127.0.0.1:1", kafka_brokers=f"127.0.0.1:{free_port()}"
            ):
                raise AssertionError("started without a broker")
        except KafkaTopicError as exc:
            assert "cannot reach Kafka" in str(exc)

    asyncio.run(body())


def test_a_broker_gone_gives_503_and_fails_readiness(
    kafka_broker: TansuBroker, tmp_path: Any
) -> None:
    """The shared broker proves tansu is here; this test stops a broker of its own."""
    broker = TansuBroker(log_file=tmp_path / "tansu.log")
    broker.start()

    async def body() -> None:
        async with running_ingest(
            "nats://127.0.0.1:1", kafka_brokers=broker.bootstrap, publish_timeout=2
        ) as c:
            assert (await c.post("/audit", event_list([records.audit("a")])))[0] == 200
            broker.kill()
            status, doc, headers = await c.post("/audit", event_list([records.audit("b")]))
            assert (status, headers.get("Retry-After")) == (503, "5"), doc
            status, text = await c.get("/readyz")
            assert status == 500 and "[-]kafka failed: Kafka publish failed" in text

    try:
        asyncio.run(body())
    finally:
        broker.stop()
