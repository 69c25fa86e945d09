"""The Kafka worker (``activity run --transport kafka``) in-process against a real tansu broker.

Each test uses topics and a consumer group of its own on the session's broker.
"""

from __future__ import annotations

import asyncio
import threading
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
from processor.sink.memory import MemorySink
from tests.integration import records
from tests.integration.kafka_worker_tools import (
    PARTITIONS,
    committed,
    kafka_settings,
    produce,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration


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


def test_a_poison_record_is_dead_lettered_and_its_partition_goes_on(
    kafka_broker: TansuBroker, policy_dir: Path, chdb_sink: ChdbSink
) -> None:
    """docs/reliability.md's isolation contract on Kafka: the bad record becomes a dead letter
    with its reason, its neighbours in the same partition become activities, later records of
    the partition are read, and the offsets move past all of them."""
    from processor.deadletter import decode_dead_letter, original_payload_bytes
    from processor.kafka.route import route

    settings = kafka_settings(kafka_broker)
    poison = b'{"kind": "Event", "objectRef": '  # cut off: not JSON
    _, part = route(None, "audit", PARTITIONS)  # where a record without a key goes
    same = [r for r in (records.audit(f"n-{i}", seq=i) for i in range(200))]
    same = [r for r in same if route(r, "audit", PARTITIONS)[1] == part][:3]
    assert len(same) == 3

    async def body(worker: KafkaWorker) -> None:
        producer = new_producer(settings.kafka_brokers)
        await producer.start()
        try:
            for value in (orjson.dumps(same[0]), poison, orjson.dumps(same[1])):
                await producer.send_and_wait(settings.kafka_audit_topic, value, partition=part)
            await send_records(producer, settings.kafka_audit_topic, "audit", PARTITIONS, same[2:])
        finally:
            await producer.stop()
        pipeline = worker.pipeline
        assert pipeline is not None
        await wait_for(lambda: pipeline.committed_messages == 4, what="4 records committed")
        await worker.transport.commit()  # type: ignore[union-attr]

    asyncio.run(with_worker(settings, policy_dir, chdb_sink, body))
    names = {r["name"].split("-")[0] for r in activity_rows(chdb_sink)}
    assert len(activity_rows(chdb_sink)) == 3, names
    letters = asyncio.run(read_topic(settings, settings.kafka_dead_letter_topic, 1))
    assert len(letters) == 1
    record = decode_dead_letter(letters[0].value)
    assert record["errorType"] == "unmarshal"
    assert record["error"]
    assert original_payload_bytes(record) == poison
    assert letters[0].partition == part
    assert dict(letters[0].headers)["id"].startswith(b"dlq-")
    offsets = asyncio.run(committed(settings))
    assert offsets[(settings.kafka_audit_topic, part)] == 4  # the partition went on past it


def dead_letters_counted(worker: KafkaWorker) -> float:
    """``dlq_events_published_total`` of ``worker``, summed over its labels."""
    samples = [s for m in worker.metrics.dlq_published.collect() for s in m.samples]
    return sum(s.value for s in samples if s.name.endswith("_total"))


def test_a_re_read_record_s_dead_letter_is_published_again_and_counted_once(
    kafka_broker: TansuBroker, policy_dir: Path, chdb_sink: ChdbSink
) -> None:
    """docs/metrics.md: ``dlq_events_published_total`` counts a record's dead letter once. Kafka
    has no duplicate window: a record read again (here the partition is rewound, as a revoke
    whose commit failed makes the worker re-read) publishes its dead letter again, with the
    same ``id``; the worker knows the id it stored and does not count it twice."""
    from aiokafka.structs import TopicPartition

    from processor.kafka.route import route

    settings = kafka_settings(kafka_broker)
    poison = b'{"kind": "Event", "objectRef": '  # cut off: not JSON
    _, part = route(None, "audit", PARTITIONS)
    good = orjson.dumps(records.audit("rewound", seq=1))

    async def body(worker: KafkaWorker) -> None:
        producer = new_producer(settings.kafka_brokers)
        await producer.start()
        try:
            for value in (poison, good):
                await producer.send_and_wait(settings.kafka_audit_topic, value, partition=part)
        finally:
            await producer.stop()
        pipeline, consumer = worker.pipeline, worker.consumer
        assert pipeline is not None and consumer is not None
        await wait_for(lambda: pipeline.committed_messages == 2, what="2 records committed")
        assert dead_letters_counted(worker) == 1
        consumer.seek(TopicPartition(settings.kafka_audit_topic, part), 0)  # type: ignore[attr-defined]
        await wait_for(lambda: pipeline.committed_messages == 4, what="both records re-read")
        assert dead_letters_counted(worker) == 1

    asyncio.run(with_worker(settings, policy_dir, chdb_sink, body))
    letters = asyncio.run(read_topic(settings, settings.kafka_dead_letter_topic, 2))
    assert len(letters) == 2  # published again: Kafka cannot drop the repeat
    assert len({dict(r.headers)["id"] for r in letters}) == 1  # the same id: readers drop it


class GatedSink(MemorySink):
    """A memory sink whose inserts wait until :attr:`gate` is set (a batch held in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def insert(self, table: str, rows: Any, token: str) -> None:
        self.waiting.set()
        self.gate.wait(60)
        super().insert(table, rows, token)


def test_a_revoke_mid_batch_hands_over_without_loss_or_duplicates(
    kafka_broker: TansuBroker, policy_dir: Path
) -> None:
    """A second worker joins the group while the first one's batch insert is in flight: the
    first stores, publishes and commits what it was handed before giving partitions up, so the
    second reads none of it again (not even an invisible duplicate) and nothing is lost."""
    settings = kafka_settings(kafka_broker)
    sink = GatedSink()
    first = [records.audit(f"a-{i}", seq=i) for i in range(40)]
    second = [records.audit(f"b-{i}", seq=i) for i in range(40)]

    async def main() -> None:
        one = KafkaWorker(settings, [str(policy_dir)], sink=sink)
        two = KafkaWorker(settings, [str(policy_dir)], sink=sink)
        await one.start()
        try:
            await produce(settings, "audit", first)
            await wait_for(sink.waiting.is_set, what="a batch insert in flight")
            assert one.handover is not None and one.handover.revocations == 0
            await two.start()
            try:
                await wait_for(lambda: one.handover.revocations >= 1, what="the revoke")  # type: ignore[union-attr]
                assert not sink.rows("activities")  # the batch is still in flight
                sink.gate.set()
                await wait_for(lambda: len(sink.rows("activities")) == 40, what="the handover")
                await wait_for(
                    lambda: two.consumer.assignment() and one.consumer.assignment(),  # type: ignore[union-attr]
                    what="both workers own partitions",
                )
                await produce(settings, "audit", second)
                await wait_for(lambda: len(sink.rows("activities")) == 80, what="80 activities")
            finally:
                await two.stop()
        finally:
            await one.stop()

    asyncio.run(main())
    names = [orjson.loads(r)["metadata"]["name"] for r in sink.rows("activities")]
    assert len(names) == len(set(names)) == 80  # stored once each: nothing was read twice
    assert sum(asyncio.run(committed(settings)).values()) == 80


def test_kafka_topics_command_creates_the_topics_once(
    kafka_broker: TansuBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    from processor.cli import main

    s = kafka_settings(kafka_broker)
    argv = [
        "kafka", "topics", "--kafka-brokers", s.kafka_brokers, "--partition-count", "3",
        "--kafka-audit-topic", s.kafka_audit_topic, "--kafka-event-topic", s.kafka_event_topic,
        "--kafka-activity-topic", s.kafka_activity_topic,
        "--kafka-dead-letter-topic", s.kafka_dead_letter_topic,
        "--kafka-policy-topic", s.kafka_policy_topic, "-o", "json",
    ]  # fmt: skip
    assert main(argv) == 0
    first = orjson.loads(capsys.readouterr().out)["items"]
    assert {(i["topic"], i["partitions"], i["created"]) for i in first} == {
        (s.kafka_audit_topic, 3, True),
        (s.kafka_event_topic, 3, True),
        (s.kafka_activity_topic, 3, True),
        (s.kafka_dead_letter_topic, 3, True),
        (s.kafka_policy_topic, 1, True),
    }
    assert main(argv[:-2]) == 0  # again: kept, as a table
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["TOPIC", "PARTITIONS", "STATUS"]
    assert table.count("exists") == 5
    # the workers would route by another modulus than the topic has: refused
    wrong = [a if a != "3" else "5" for a in argv]
    assert main(wrong) == 1
    assert "has 3 partitions, the workers route by 5" in capsys.readouterr().err
