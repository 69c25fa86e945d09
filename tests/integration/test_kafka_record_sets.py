"""The Kafka worker's fetch path (processor/kafka/fetch.py, intake.py) on a real tansu broker:
fetched record sets decoded on the decode thread give exactly the records aiokafka's own reader
gives, for every codec and from any position; a corrupt batch costs its partition a retry, never
the records before it, nor the other partitions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from processor.kafka.broker import TansuBroker
from processor.kafka.fetch import RECORD_SETS, install
from processor.kafka.intake import CORRUPT_ATTEMPTS, CORRUPT_BACKOFF, KafkaIntake
from processor.kafka.transport import KafkaTransport
from processor.kafka.worker import KafkaWorker
from processor.sink.memory import MemorySink
from tests.integration import records
from tests.integration.kafka_worker_tools import committed, kafka_settings, read_topic, wait_for

pytestmark = pytest.mark.integration

if TYPE_CHECKING:
    from pathlib import Path

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PARTITIONS = 3
#: (partition, offset, key, value)
Row = tuple[int, int, bytes | None, bytes | None]


async def new_topic(brokers: str, partitions: int = PARTITIONS) -> str:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"sets-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=brokers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    return topic


def value_of(codec: str, i: int) -> bytes | None:
    """Values of every shape: empty, small, a few KiB, one null (a tombstone)."""
    if i == 7:
        return None
    if i % 11 == 0:
        return b""
    return (f'{{"codec":"{codec}","i":{i},"pad":"' + "x" * (i * 37 % 5000) + '"}').encode()


async def produce_mixed(brokers: str, topic: str, per_codec: int = 120) -> None:
    """``per_codec`` records per codec, every codec in turn, into every partition: batches of
    many records (linger), keys and null keys."""
    from aiokafka import AIOKafkaProducer

    for codec in CODECS:
        producer = AIOKafkaProducer(
            bootstrap_servers=brokers,
            compression_type=None if codec == "none" else codec,
            linger_ms=20,
        )
        await producer.start()
        try:
            futures = []
            for i in range(per_codec):
                key = None if i % 5 == 0 else f"{codec}-{i % 9}".encode()
                futures.append(
                    await producer.send(
                        topic, value_of(codec, i), key=key, partition=i % PARTITIONS
                    )
                )
            await asyncio.gather(*futures)
        finally:
            await producer.stop()


async def aiokafka_rows(brokers: str, topic: str, start: dict[int, int]) -> list[Row]:
    """What aiokafka's own reader gives from ``start`` (partition -> offset)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False)
    await consumer.start()
    rows: list[Row] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        # to each partition's high watermark (tansu's ListOffsets ends at the last batch's start)
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                rows += [(tp.partition, r.offset, r.key, r.value) for r in records]
            ends = [(consumer.highwater(tp), await consumer.position(tp)) for tp in tps]
            if not batches and all(high is not None and high <= at for high, at in ends):
                break
    finally:
        await consumer.stop()
    return sorted(rows)


@asynccontextmanager
async def set_intake(brokers: str, topic: str, start: dict[int, int]) -> AsyncIterator[Any]:
    """A record-set consumer on ``topic`` (assigned, from ``start``) behind a KafkaIntake whose
    handle keeps the deliveries (``intake.got``)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    assert install(), "this aiokafka has the fetcher names the hook replaces"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=brokers, enable_auto_commit=False, value_deserializer=RECORD_SETS
    )
    await consumer.start()
    got: list[Any] = []

    def handle(deliveries: Sequence[Any], source: str, partition: str) -> None:
        assert source == "audit" and {int(partition)} == {d.partition for d in deliveries}
        got.extend(deliveries)

    transport = KafkaTransport(consumer, None, "out", "dead", PARTITIONS)
    intake = KafkaIntake(consumer, transport, handle, {topic: "audit"}, max_records=100)
    intake.got = got  # type: ignore[attr-defined]
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        await intake.start()
        yield intake
    finally:
        await intake.stop()
        await consumer.stop()


def rows_of(deliveries: Sequence[Any]) -> list[Row]:
    return sorted((d.partition, d.offset, d.key, d.data) for d in deliveries)


@pytest.mark.parametrize("start", [{}, {0: 7, 1: 130, 2: 199}], ids=["from-start", "mid-batch"])
def test_record_sets_give_what_aiokafka_reads(
    kafka_broker: TansuBroker, start: dict[int, int]
) -> None:
    asyncio.run(_sets_as_aiokafka(kafka_broker.bootstrap, start))


async def _sets_as_aiokafka(brokers: str, start: dict[int, int]) -> None:
    topic = await new_topic(brokers)
    await produce_mixed(brokers, topic)
    expected = await aiokafka_rows(brokers, topic, start)
    assert len(expected) == len(CODECS) * 120 - sum(start.values())
    assert any(v is None for *_, v in expected) or start, "a tombstone among them"
    async with set_intake(brokers, topic, start) as intake:
        await wait_for(lambda: len(intake.got) >= len(expected), what="every record")
        await asyncio.sleep(0.3)  # nothing more may come
        assert rows_of(intake.got) == expected
        by_partition: dict[int, list[int]] = {}
        for d in intake.got:
            by_partition.setdefault(d.partition, []).append(d.offset)
        for offsets in by_partition.values():
            assert offsets == sorted(offsets), "a partition's records in offset order"
        # every delivery tracked until settled, in the chunk it was handed over with
        book = intake.transport.book
        assert sum(book.unsettled((topic, p)) for p in range(PARTITIONS)) == len(expected)
        assert book.settle(intake.got) == {(topic, p) for p in by_partition}
        assert book.to_commit() == {
            (topic, p): max(offsets) + 1 for p, offsets in by_partition.items()
        }
        assert intake.health == ""


async def produce_corrupt(brokers: str, topic: str, partition: int, values: list[bytes]) -> bytes:
    """One record batch whose CRC does not match its bytes (tansu stores it as sent); returns
    the batch sent."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.protocol.produce import ProduceRequest
    from aiokafka.record.default_records import DefaultRecordBatchBuilder
    from aiokafka.structs import TopicPartition

    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
    for i, value in enumerate(values):
        builder.append(i, timestamp=None, key=None, value=value, headers=[])
    data = bytearray(builder.build())
    data[-3] ^= 0xFF  # a byte of the last value
    producer = AIOKafkaProducer(bootstrap_servers=brokers)
    await producer.start()
    try:
        node = producer.client.cluster.leader_for_partition(TopicPartition(topic, partition))
        request = ProduceRequest(
            required_acks=-1,
            timeout=30000,
            topics=[(topic, [(partition, bytes(data))])],
            transactional_id=None,
        )
        response = await producer.client.send(node, request)
        assert response.topics[0][1][0][1] == 0, response  # stored
    finally:
        await producer.stop()
    return bytes(data)


async def send(brokers: str, topic: str, partition: int, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=brokers, compression_type="zstd")
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def test_a_corrupt_batch_costs_its_partition_a_retry_not_the_records_before_it(
    kafka_broker: TansuBroker,
) -> None:
    asyncio.run(_corrupt_batch(kafka_broker.bootstrap))


async def _corrupt_batch(brokers: str) -> None:
    topic = await new_topic(brokers)
    await send(brokers, topic, 0, [b"before-%d" % i for i in range(5)])
    await produce_corrupt(brokers, topic, 0, [b"bad-0", b"bad-1", b"bad-2"])  # offsets 5-7
    await send(brokers, topic, 0, [b"after-0", b"after-1"])
    await send(brokers, topic, 1, [b"other-%d" % i for i in range(4)])
    async with set_intake(brokers, topic, {}) as intake:
        await wait_for(lambda: len(intake.got) >= 9, what="the records around the bad batch")
        await wait_for(lambda: "corrupt" in intake.health, what="health names the batch")
        assert f"{topic}/0 offset 5" in intake.health and "CRC" in intake.health
        await asyncio.sleep(CORRUPT_BACKOFF * 2.5)  # fetched again (at least twice): still bad
        values = [d.data for d in intake.got]
        assert sorted(values) == sorted(
            [b"before-%d" % i for i in range(5)] + [b"other-%d" % i for i in range(4)]
        ), "nothing of or after the bad batch, nothing twice; the other partition whole"
        assert intake.running
        await send(brokers, topic, 1, [b"later"])  # the other partition still flows
        await wait_for(lambda: b"later" in [d.data for d in intake.got], what="partition 1")


def test_a_batch_corrupt_in_the_log_is_dead_lettered_whole_and_the_partition_goes_on(
    kafka_broker: TansuBroker, policy_dir: Path
) -> None:
    """Through a real worker: the batch found corrupt in CORRUPT_ATTEMPTS fetches becomes one
    dead letter holding its bytes and the reason; the records before and after it become
    activities and the committed offset passes it."""
    from processor.deadletter import decode_dead_letter, original_payload_bytes

    settings = kafka_settings(kafka_broker)
    brokers, topic = settings.kafka_brokers, settings.kafka_audit_topic
    audits = [orjson.dumps(records.audit(f"cb-{i}", seq=i)) for i in range(7)]
    sink = MemorySink()
    sent: list[bytes] = []

    async def run() -> None:
        worker = KafkaWorker(settings, [str(policy_dir)], sink=sink)
        await worker.start()  # creates the topics
        try:
            await send(brokers, topic, 0, audits[:2])  # offsets 0-1
            sent.append(await produce_corrupt(brokers, topic, 0, audits[2:5]))  # 2-4
            await send(brokers, topic, 0, audits[5:])  # 5-6
            intake, pipeline = worker.intake, worker.pipeline
            assert intake is not None and pipeline is not None
            await wait_for(lambda: intake.rejected == 1, timeout=30, what="the batch rejected")
            await wait_for(lambda: pipeline.committed_records >= 5, what="the rest committed")
            await worker.transport.commit()  # type: ignore[union-attr]
            assert intake.health == ""
        finally:
            await worker.stop()

    asyncio.run(run())
    summaries = sorted(orjson.loads(row)["spec"]["summary"] for row in sink.rows("activities"))
    names = [f"cb-{i}" for i in (0, 1, 5, 6)]
    assert len(summaries) == 4 and all(any(n in s for s in summaries) for n in names), summaries
    letters = asyncio.run(read_topic(settings, settings.kafka_dead_letter_topic, 1))
    assert len(letters) == 1
    record = decode_dead_letter(letters[0].value)
    assert record["errorType"] == "unmarshal" and record["originalPayloadEncoding"] == "base64"
    assert "corrupt Kafka record batch, offsets 2-4" in record["error"]
    assert "CRC mismatch" in record["error"] and f"{CORRUPT_ATTEMPTS} fetches" in record["error"]
    stored = original_payload_bytes(record)
    assert len(stored) == len(sent[0]) and stored[16:] == sent[0][16:]  # offsets set by the broker
    offsets = asyncio.run(committed(settings))
    assert offsets[(topic, 0)] == 7


def test_a_decoder_fault_loses_nothing(
    kafka_broker: TansuBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the decoder (an exception, not a corrupt batch) costs the set a fetch again from
    its first record, not its records."""
    from processor.kafka import intake as intake_module

    real, calls = intake_module._decode, []

    def failing_once(fetched: Any) -> Any:
        calls.append(fetched.fetch_offset)
        if len(calls) == 1:
            raise RuntimeError("injected decoder fault")
        return real(fetched)

    monkeypatch.setattr(intake_module, "_decode", failing_once)
    asyncio.run(_decoder_fault(kafka_broker.bootstrap))
    assert calls[0] == 0 and len(calls) >= 2


async def _decoder_fault(brokers: str) -> None:
    topic = await new_topic(brokers)
    values = [b"v-%d" % i for i in range(20)]
    await send(brokers, topic, 0, values)
    async with set_intake(brokers, topic, {}) as intake:
        await wait_for(lambda: "decoding failed" in intake.health, what="the fault reported")
        await wait_for(lambda: len(intake.got) >= 20, what="every record after the retry")
        await asyncio.sleep(0.2)
        assert [d.data for d in intake.got] == values and intake.health == ""
