"""The Kafka side of the transport seam (:mod:`processor.transport`): offset commits and produces.

**Settlement.** Kafka acknowledges by committing, per partition, the offset up to which every
record was handled; the pipeline settles deliveries out of order (records that gave nothing to
keep within 50 ms, the others when their batch committed). :class:`KafkaTransport` therefore
keeps, per partition, the chunks of records handed over in offset order and commits the end of
the longest fully settled prefix: a record is never committed past one still waiting.

**Publish.** Activities go to the activity topic, dead letters to the dead-letter topic, each in
the partition of the input record it came from (the topics have the input's partition count, so
an object's activities stay in order in one partition), keyed by that record's key, with the
NATS subject in the ``subject`` header and the deterministic id (the activity's name, the dead
letter's id) in the ``id`` header: Kafka cannot deduplicate (tansu has no idempotent producer),
consumers drop repeats by ``id`` as NATS does by ``Nats-Msg-Id``.

**Dead letters counted once.** On NATS the stream's duplicate window answers a re-published
dead letter as a duplicate and ``dlq_events_published_total`` counts it once. Kafka has no such
window: a record read again (a crash or a revoke before its offset was committed, a rewind)
publishes its dead letter again. The transport keeps the ids of the last
:data:`DEAD_LETTER_IDS` dead letters it stored and returns a repeat as not fresh, so a worker
counts a record's dead letter once; a worker that re-reads another one's records (after a
crash) cannot know and counts them again (docs/metrics.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from processor.kafka.batches import KafkaDelivery
from processor.stream.publisher import PublishError
from processor.transport import Item, Message

log = logging.getLogger(__name__)

__all__ = [
    "DEAD_LETTER_IDS",
    "Chunk",
    "KafkaDelivery",
    "KafkaPublishError",
    "KafkaTransport",
    "OffsetBook",
    "deliveries_of",
]

#: Ids of the dead letters a worker stored that it remembers (about 100 bytes each): a re-read
#: record's dead letter is a repeat if its id is among them (the NATS duplicate window's part).
DEAD_LETTER_IDS = 100_000


class KafkaPublishError(PublishError):
    """Some produces of a batch were not acknowledged by the brokers (retriable)."""

    def __init__(self, failed: int, total: int, reasons: Sequence[str]) -> None:
        super().__init__(failed, total, reasons)
        self.args = (f"{failed} of {total} Kafka produces failed: {'; '.join(reasons)}",)


@dataclass(slots=True)
class Chunk:
    """Records of one partition handed over together: offsets ``[first, end)``, ``left`` of
    them not yet settled."""

    first: int
    end: int
    left: int


def deliveries_of(topic: str, partition: int, records: Sequence[Any]) -> list[KafkaDelivery]:
    """Deliveries of ``records`` (aiokafka ``ConsumerRecord``s of one partition, in offset
    order, at least one) sharing one :class:`Chunk`, as the record-set decoder makes them."""
    from processor.kafka.fetch import decoder

    delivery = decoder().KafkaDelivery
    chunk = Chunk(records[0].offset, records[-1].offset + 1, len(records))
    return [delivery(r.value, topic, partition, r.offset, r.key, chunk) for r in records]


@dataclass
class _Partition:
    chunks: deque[Chunk] = field(default_factory=deque)
    settled: int = -1  # the offset to commit (end of the settled prefix); -1: nothing yet
    committed: int = -1


class OffsetBook:
    """Per partition, what was handed over and up to where everything is settled."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int], _Partition] = {}

    def hand_over(self, topic: str, partition: int, records: Sequence[Any]) -> list[KafkaDelivery]:
        """Deliveries of ``records`` (aiokafka ``ConsumerRecord``s of one partition, in offset
        order), tracked until settled."""
        deliveries = deliveries_of(topic, partition, records)
        self.take(topic, partition, deliveries[0].chunk)
        return deliveries

    def take(self, topic: str, partition: int, chunk: Chunk) -> None:
        """Track ``chunk`` (records of one partition handed over together, after the ones
        before) until its records are settled."""
        self._parts.setdefault((topic, partition), _Partition()).chunks.append(chunk)

    def settle(self, deliveries: Sequence[KafkaDelivery]) -> set[tuple[str, int]]:
        """Mark ``deliveries`` settled; the partitions whose settled prefix grew."""
        touched: set[tuple[str, int]] = set()
        for d in deliveries:
            d.chunk.left -= 1
            touched.add((d.topic, d.partition))
        grown = set()
        for tp in touched:
            part = self._parts.get(tp)
            if part is None:  # revoked meanwhile: no longer ours to commit
                continue
            chunks = part.chunks
            while chunks and chunks[0].left <= 0:
                part.settled = chunks.popleft().end
                grown.add(tp)
        return grown

    def to_commit(self, tps: Sequence[tuple[str, int]] | None = None) -> dict[tuple[str, int], int]:
        """The settled offsets not committed yet (of ``tps``, or of every partition)."""
        keys = self._parts.keys() if tps is None else tps
        out = {}
        for tp in keys:
            part = self._parts.get(tp)
            if part is not None and part.settled > part.committed:
                out[tp] = part.settled
        return out

    def committed(self, offsets: dict[tuple[str, int], int]) -> None:
        for tp, offset in offsets.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = max(part.committed, offset)

    def unsettled(self, tp: tuple[str, int]) -> int:
        """Records of ``tp`` handed over and not settled."""
        part = self._parts.get(tp)
        return sum(c.left for c in part.chunks) if part is not None else 0

    def drop(self, tp: tuple[str, int]) -> None:
        """Forget ``tp`` (revoked): its later settlements commit nothing."""
        self._parts.pop(tp, None)

    def partitions(self) -> list[tuple[str, int]]:
        return list(self._parts)


class KafkaTransport:
    """Settle by committing offsets on ``consumer``, publish with ``producer``.

    Args:
        consumer: the group's ``AIOKafkaConsumer`` (manual commits).
        producer: an ``AIOKafkaProducer`` (not idempotent: tansu refuses InitProducerId).
        activity_topic, dead_letter_topic: where outputs go.
        dead_letter_prefix: subjects starting with it are dead letters.
        out_partitions: partitions of the output topics.
    """

    name = "kafka"

    def __init__(
        self,
        consumer: Any,
        producer: Any,
        activity_topic: str,
        dead_letter_topic: str,
        out_partitions: int,
        dead_letter_prefix: str = "activity.dlq.",
    ) -> None:
        self.consumer = consumer
        self.producer = producer
        self.activity_topic = activity_topic
        self.dead_letter_topic = dead_letter_topic
        self.out_partitions = out_partitions
        self.dead_letter_prefix = dead_letter_prefix
        self.book = OffsetBook()
        self._lock = asyncio.Lock()
        #: why the last offset commit failed ("" once one succeeded)
        self.commit_error = ""
        #: ids of the dead letters stored, oldest first (at most :data:`DEAD_LETTER_IDS`)
        self._letter_ids: OrderedDict[str, None] = OrderedDict()

    # -- settlement -------------------------------------------------------------------------
    async def settle(self, deliveries: Sequence[Message]) -> None:
        grown = self.book.settle(deliveries)  # type: ignore[arg-type]
        if grown:
            await self.commit(list(grown))

    async def commit(self, tps: Sequence[tuple[str, int]] | None = None) -> bool:
        """Commit the settled offsets (of ``tps``, or all); False if the commit failed (the
        offsets stay due and go with the next commit; after a crash they are redelivered)."""
        from aiokafka.structs import TopicPartition

        async with self._lock:
            offsets = self.book.to_commit(tps)
            if not offsets:
                return True
            try:
                await self.consumer.commit(
                    {TopicPartition(t, p): off for (t, p), off in offsets.items()}
                )
            except Exception as exc:  # a rebalance in progress, the coordinator moved...
                self.commit_error = f"offset commit failing: {exc!r}"
                log.warning("offset commit of %d partitions failed: %r", len(offsets), exc)
                return False
            self.commit_error = ""
            self.book.committed(offsets)
            return True

    async def keep_alive(self, deliveries: Sequence[Message]) -> None:
        """Nothing: Kafka has no per-record ack timer (the group heartbeat runs by itself)."""

    def position(self, delivery: Message) -> tuple[str, int]:
        d: KafkaDelivery = delivery  # type: ignore[assignment]
        return f"{d.topic}/{d.partition}", d.offset

    # -- publish ----------------------------------------------------------------------------
    async def publish(self, items: Sequence[Item], owners: Sequence[Message | None]) -> list[int]:
        send = self.producer.send
        futures = []
        prefix = self.dead_letter_prefix
        n = self.out_partitions
        failed: list[str] = []
        for (subject, payload, msg_id), owner in zip(items, owners, strict=True):
            topic = self.dead_letter_topic if subject.startswith(prefix) else self.activity_topic
            headers = [("subject", subject.encode())]
            if msg_id:
                headers.append(("id", msg_id.encode()))
            key = partition = None
            if owner is not None:  # a KafkaDelivery (the twin's or the native one)
                d: KafkaDelivery = owner  # type: ignore[assignment]
                key, partition = d.key, d.partition % n
            try:
                futures.append(
                    await send(topic, payload, key=key, partition=partition, headers=headers)
                )
            except Exception as exc:
                failed.append(f"{topic}: {exc!r}")
                break
        results = await asyncio.gather(*futures, return_exceptions=True)
        stored = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
        fresh = self._first_letters(items, stored)
        failed += [f"{r!r}" for r in results if isinstance(r, BaseException)]
        if failed:
            error = KafkaPublishError(len(items) - len(stored), len(items), failed[:3])
            error.fresh = fresh
            raise error
        return fresh

    def _first_letters(self, items: Sequence[Item], stored: list[int]) -> list[int]:
        """``stored`` without the dead letters whose id this transport stored before (a re-read
        record's); remembers the others' ids."""
        prefix, seen = self.dead_letter_prefix, self._letter_ids
        fresh = []
        for i in stored:
            subject, _, msg_id = items[i]
            if msg_id and subject.startswith(prefix):
                if msg_id in seen:
                    seen.move_to_end(msg_id)
                    continue
                seen[msg_id] = None
                if len(seen) > DEAD_LETTER_IDS:
                    seen.popitem(last=False)
            fresh.append(i)
        return fresh
