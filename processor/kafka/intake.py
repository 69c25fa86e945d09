"""The Kafka hot path: fetched record sets decoded off the event loop, handed to the pipeline.

Measured on tansu (docs/kafka.md): Faust's per-event stream iteration reads 3-4k records/s, a raw
aiokafka ``getmany`` loop 44-51k. So the records never pass through Faust: :class:`KafkaIntake`
calls ``getmany`` and hands each partition's records to ``Pipeline.handle`` as one group.

**Decoding off the event loop.** The consumer returns each partition's fetched record set whole
(:mod:`processor.kafka.fetch`); the intake queues its decoding (CRC, decompression, record
parsing: ``processor._native.kafkabatch`` releases the GIL for them) on one decode thread and,
while it runs, hands over the sets decoded before: translating on the event loop's thread and
decoding on the other core overlap. Sets are handed over in the order they were fetched, so a
partition's records stay in offset order. At most ``lookahead`` sets wait (decoded or not).

**Revoke.** When the group takes partitions away, :class:`Handover` (the consumer's rebalance
listener) stops handing over their records, flushes the pipeline (insert, publish, settle
everything handed over so far) and commits their settled offsets before the partitions go: the
new owner starts after the last record this worker stored. If the flush does not finish within
``flush_timeout`` (ClickHouse down), the partitions go without it: the new owner re-reads from
the last commit and the storage dedup absorbs the repeats. Sets fetched before a revoke are
never handed over, even when the partition comes back (its records are read again from the
commit).

**A corrupt record batch** (CRC mismatch, undecodable compression, records that do not fit): the
records before it are handed over, the partition is sought back to the batch and fetched again
after :data:`CORRUPT_BACKOFF` seconds, and ``/healthz`` reports it (``kafka`` check) until a
fetch of that partition decodes cleanly (a transient fault). After :data:`CORRUPT_ATTEMPTS`
fetches that found the same batch corrupt, it is stored so in the broker's log: the batch's bytes
are dead-lettered whole (``unmarshal``, base64, with the reason: ``reject``, the pipeline's), it
is settled as one record once the dead letter is stored, and the partition goes on after it.
A batch whose extent cannot be read (a corrupt header) is retried for ever, named by ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from processor.deadletter import UNMARSHAL
from processor.kafka.batches import KafkaDelivery, batch_span
from processor.kafka.fetch import FetchedSet, decoder
from processor.kafka.transport import Chunk, KafkaTransport, deliveries_of
from processor.metrics import Metrics

log = logging.getLogger(__name__)

__all__ = ["CORRUPT_ATTEMPTS", "CORRUPT_BACKOFF", "LOOKAHEAD", "Handover", "KafkaIntake"]

#: ``Pipeline.handle`` (deliveries: :class:`~processor.kafka.batches.KafkaDelivery`)
Handle = Callable[[Sequence[Any], str, str], None]
#: ``Pipeline.reject``: dead-letter a delivery whole (delivery, source, partition, error, type)
Reject = Callable[[Any, str, str, str, str], None]
TP = tuple[str, int]

#: Fetched sets waiting to be handed over (decoded or being decoded): each holds up to
#: ``--pull-max-bytes`` of one partition.
LOOKAHEAD = 4
#: Seconds before a partition whose fetch held a corrupt batch is fetched again.
CORRUPT_BACKOFF = 1.0
#: Fetches finding the same batch corrupt before it is dead-lettered and passed.
CORRUPT_ATTEMPTS = 3


def _decode(fetched: FetchedSet) -> tuple[list[KafkaDelivery], int, str]:
    """Runs on the decode thread."""
    return decoder().decode(  # type: ignore[no-any-return]
        fetched.data,
        fetched.fetch_offset,
        fetched.topic,
        fetched.partition,
        fetched.check_crcs,
        Chunk,
    )


class KafkaIntake:
    """Read fetched sets with ``getmany``, decode them on a thread, hand them to the pipeline.

    Args:
        consumer: a subscribed ``AIOKafkaConsumer`` (manual commits); with
            ``value_deserializer=RECORD_SETS`` its fetches come as :class:`FetchedSet`, else as
            aiokafka's records (handed over as they are).
        transport: tracks what is handed over (its :class:`~processor.kafka.transport.OffsetBook`).
        handle: ``Pipeline.handle``.
        sources: topic -> ``audit`` / ``event``.
        max_records: records (or fetched sets) per ``getmany``.
        lookahead: fetched sets that may wait to be handed over.
        reject: ``Pipeline.reject``, for a batch corrupt in the broker's log; None: such a batch
            is retried for ever.
    """

    def __init__(
        self,
        consumer: Any,
        transport: KafkaTransport,
        handle: Handle,
        sources: Mapping[str, str],
        max_records: int,
        lookahead: int = LOOKAHEAD,
        reject: Reject | None = None,
    ) -> None:
        self.consumer = consumer
        self.transport = transport
        self.handle = handle
        self.sources = dict(sources)
        self.max_records = max_records
        self.lookahead = max(1, lookahead)
        self.reject = reject
        #: corrupt batches dead-lettered and passed
        self.rejected = 0
        self.paused = False
        #: partitions being given up: their records are no longer handed over
        self.revoking: set[TP] = set()
        self.handed = 0
        self.error = ""
        #: partition -> why its last fetch could not be decoded (until one decodes cleanly)
        self.corrupt: dict[TP, str] = {}
        #: partition -> its assignment generation: sets fetched under an older one are dropped
        self._epochs: dict[TP, int] = {}
        self._backoff: set[TP] = set()
        #: partition -> (the corrupt batch's offset, fetches that found it so)
        self._attempts: dict[TP, tuple[int, int]] = {}
        self._decoder: ThreadPoolExecutor | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="kafka-decode")
        self._task = asyncio.ensure_future(self._run())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def revoke(self, tps: Sequence[TP]) -> None:
        """Stop handing over ``tps`` (being given up): what was fetched for them is dropped."""
        self.revoking.update(tps)
        for tp in tps:
            self._epochs[tp] = self._epochs.get(tp, 0) + 1
            self.corrupt.pop(tp, None)
            self._attempts.pop(tp, None)

    async def _run(self) -> None:
        from aiokafka.errors import ConsumerStoppedError, KafkaError

        consumer = self.consumer
        loop = asyncio.get_running_loop()
        #: (partition, its epoch then, the set or aiokafka's records, the set's decoding or
        #: None), in fetch order
        waiting: deque[tuple[TP, int, Any, Any]] = deque()
        while not self._stopping:
            if len(waiting) < self.lookahead:
                try:
                    batches = await consumer.getmany(
                        timeout_ms=0 if waiting else 200, max_records=self.max_records
                    )
                except ConsumerStoppedError:
                    return
                except KafkaError as exc:
                    self.error = f"fetch failing: {exc!r}"
                    log.warning("getmany failed, retrying: %r", exc)
                    await asyncio.sleep(0.5)
                    continue
                self.error = ""
                for tp, items in batches.items():
                    key = (tp.topic, tp.partition)
                    if not items or key in self.revoking:
                        continue
                    epoch = self._epochs.get(key, 0)
                    if isinstance(items[0], FetchedSet):
                        for fetched in items:
                            future = loop.run_in_executor(self._decoder, _decode, fetched)
                            waiting.append((key, epoch, fetched, future))
                    else:
                        waiting.append((key, epoch, items, None))
            if not waiting:
                continue
            key, epoch, fetched, future = waiting.popleft()
            if future is not None:
                try:
                    deliveries, corrupt_at, reason = await future
                except Exception as exc:  # a decoder fault: the set is fetched again
                    deliveries, corrupt_at, reason = [], -2, f"decoding failed: {exc!r}"
            else:
                deliveries, corrupt_at, reason = deliveries_of(key[0], key[1], fetched), -1, ""
            if self._stopping or key in self.revoking or epoch != self._epochs.get(key, 0):
                continue  # given up meanwhile: the new owner reads them from the commit
            if deliveries:
                self.transport.book.take(key[0], key[1], deliveries[0].chunk)
                self.handed += len(deliveries)
                self.handle(deliveries, self.sources[key[0]], str(key[1]))
            if corrupt_at != -1:
                self._corrupt(key, fetched, deliveries, corrupt_at, reason)
            elif key in self.corrupt:
                del self.corrupt[key]
                self._attempts.pop(key, None)
                log.info("%s/%d decodes again", *key)

    def _corrupt(
        self,
        key: TP,
        fetched: FetchedSet,
        deliveries: Sequence[KafkaDelivery],
        at: int,
        reason: str,
    ) -> None:
        """Seek ``key`` back to the corrupt batch at ``at`` (-2, a decoder fault: to the set's
        first record not handed over) and fetch it again after :data:`CORRUPT_BACKOFF`; the
        :data:`CORRUPT_ATTEMPTS`-th time, dead-letter the batch and go on after it."""
        from aiokafka.structs import TopicPartition

        if at < 0:  # the decoder failed: from the first record not handed over
            at = deliveries[-1].offset + 1 if deliveries else fetched.fetch_offset
        self._epochs[key] = self._epochs.get(key, 0) + 1  # the sets fetched after it are stale
        tp = TopicPartition(*key)
        seen, count = self._attempts.get(key, (at, 0))
        count = count + 1 if seen == at else 1
        self._attempts[key] = (at, count)
        if count >= CORRUPT_ATTEMPTS and self._reject_batch(key, fetched, at, reason):
            return
        self.corrupt[key] = f"{key[0]}/{key[1]} offset {at}: {reason}"
        log.error("corrupt record batch in %s; fetching it again", self.corrupt[key])
        self.consumer.seek(tp, at)
        if key not in self._backoff:
            self._backoff.add(key)
            self.consumer.pause(tp)
            asyncio.get_running_loop().call_later(CORRUPT_BACKOFF, self._retry, key)

    def _reject_batch(self, key: TP, fetched: FetchedSet, at: int, reason: str) -> bool:
        """Dead-letter the batch at offset ``at`` of ``fetched`` and seek past it; False when
        there is no ``reject`` or the batch's extent cannot be read."""
        from aiokafka.structs import TopicPartition

        span = batch_span(fetched.data, at) if self.reject is not None else None
        if span is None or self.reject is None:
            return False
        start, end, after = span
        chunk = Chunk(at, after, 1)
        delivery = decoder().KafkaDelivery(fetched.data[start:end], key[0], key[1], at, None, chunk)
        error = (
            f"corrupt Kafka record batch, offsets {at}-{after - 1} of {key[0]}/{key[1]}: "
            f"{reason} (in {CORRUPT_ATTEMPTS} fetches)"
        )
        self.transport.book.take(key[0], key[1], chunk)
        self.handed += 1
        self.reject(delivery, self.sources[key[0]], str(key[1]), error, UNMARSHAL)
        self.rejected += 1
        log.error("%s: dead-lettered whole; going on at offset %d", error, after)
        self.consumer.seek(TopicPartition(*key), after)
        self.corrupt.pop(key, None)
        self._attempts.pop(key, None)
        return True

    def _retry(self, key: TP) -> None:
        from aiokafka.structs import TopicPartition

        self._backoff.discard(key)
        tp = TopicPartition(*key)
        if not self.paused and tp in self.consumer.assignment():
            self.consumer.resume(tp)

    @property
    def health(self) -> str:
        """Why fetching is not well: the fetch error, or the partitions with corrupt batches."""
        if self.error:
            return self.error
        if self.corrupt:
            return "corrupt record batch: " + "; ".join(self.corrupt.values())
        return ""

    def pause(self) -> None:
        self.paused = True
        self.consumer.pause(*self.consumer.assignment())

    def resume(self) -> None:
        self.paused = False
        held = self._backoff  # partitions waiting to fetch a corrupt batch again stay paused
        tps = [tp for tp in self.consumer.assignment() if (tp.topic, tp.partition) not in held]
        self.consumer.resume(*tps)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._decoder is not None:
            self._decoder.shutdown(wait=True)


class Handover:
    """The consumer's rebalance listener: flush and commit before partitions go.

    Args:
        intake: the intake (stops handing over revoked partitions; pauses new ones if paused).
        flush: ``Pipeline.flush``.
        flush_timeout: seconds a revoke waits for the flush (keep below the rebalance timeout).
        metrics: the worker's metrics.
        lag_label: partition -> the ``consumer`` label of its lag series.
    """

    def __init__(
        self,
        intake: KafkaIntake,
        flush: Callable[[], Awaitable[None]],
        flush_timeout: float,
        metrics: Metrics,
        lag_label: Callable[[int], str],
    ) -> None:
        self.intake = intake
        self.flush = flush
        self.flush_timeout = flush_timeout
        self.metrics = metrics
        self.lag_label = lag_label
        self.revocations = 0
        self.assignments = 0

    def listener(self) -> Any:
        """An aiokafka ``ConsumerRebalanceListener`` calling this object."""
        from aiokafka import ConsumerRebalanceListener

        handover = self

        class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await handover.revoked(revoked)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                await handover.assigned(assigned)

        return _Listener()

    async def revoked(self, revoked: Any) -> None:
        tps = [(tp.topic, tp.partition) for tp in revoked]
        if not tps:
            return
        self.revocations += 1
        self.metrics.kafka_rebalances.labels("revoked").inc()
        intake = self.intake
        intake.revoke(tps)
        try:
            await asyncio.wait_for(asyncio.shield(self.flush()), self.flush_timeout)
        except TimeoutError:
            log.warning(
                "partitions %s revoked before their records were stored (%.0fs): the new owner "
                "re-reads them from the last commit",
                _names(tps),
                self.flush_timeout,
            )
        ok = await intake.transport.commit(tps)
        left = sum(intake.transport.book.unsettled(tp) for tp in tps)
        log.info(
            "gave up partitions %s (%s, %d records unsettled)",
            _names(tps),
            "offsets committed" if ok else "offset commit failed",
            left,
        )
        for topic, partition in tps:
            intake.transport.book.drop((topic, partition))
            with contextlib.suppress(KeyError):
                self.metrics.consumer_pending.remove(topic, self.lag_label(partition))
            with contextlib.suppress(KeyError):
                self.metrics.consumer_ack_pending.remove(topic, self.lag_label(partition))
        self._gauge()

    async def assigned(self, assigned: Any) -> None:
        tps = [(tp.topic, tp.partition) for tp in assigned]
        self.assignments += 1
        self.metrics.kafka_rebalances.labels("assigned").inc()
        self.intake.revoking.difference_update(tps)
        if self.intake.paused and assigned:
            self.intake.consumer.pause(*assigned)
        log.info("assigned partitions %s", _names(tps) or "none")
        self._gauge()

    def _gauge(self) -> None:
        counts = dict.fromkeys(self.intake.sources, 0)
        for tp in self.intake.consumer.assignment():
            counts[tp.topic] = counts.get(tp.topic, 0) + 1
        for topic, n in counts.items():
            self.metrics.kafka_assigned.labels(topic).set(n)


def _names(tps: Sequence[tuple[str, int]]) -> str:
    return ",".join(f"{t}/{p}" for t, p in sorted(tps))
