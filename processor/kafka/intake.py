"""The Kafka hot path: batches from ``getmany`` to the pipeline, and partition handover.

Measured on tansu (docs/kafka.md): Faust's per-event stream iteration reads 3-4k records/s, a raw
aiokafka ``getmany`` loop 44-51k. So the records never pass through Faust: :class:`KafkaIntake`
calls ``getmany`` and hands each partition's records to ``Pipeline.handle`` as one group.

**Revoke.** When the group takes partitions away, :class:`Handover` (the consumer's rebalance
listener) stops handing over their records, flushes the pipeline (insert, publish, settle
everything handed over so far) and commits their settled offsets before the partitions go: the
new owner starts after the last record this worker stored. If the flush does not finish within
``flush_timeout`` (ClickHouse down), the partitions go without it: the new owner re-reads from
the last commit and the storage dedup absorbs the repeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from processor.kafka.transport import KafkaDelivery, KafkaTransport
from processor.metrics import Metrics

log = logging.getLogger(__name__)

__all__ = ["Handover", "KafkaIntake"]

Handle = Callable[[Sequence[KafkaDelivery], str, str], None]


class KafkaIntake:
    """Read batches with ``getmany`` and hand them to the pipeline.

    Args:
        consumer: a subscribed ``AIOKafkaConsumer`` (manual commits).
        transport: tracks what is handed over (its :class:`~processor.kafka.transport.OffsetBook`).
        handle: ``Pipeline.handle``.
        sources: topic -> ``audit`` / ``event``.
        max_records: records per ``getmany``.
    """

    def __init__(
        self,
        consumer: Any,
        transport: KafkaTransport,
        handle: Handle,
        sources: Mapping[str, str],
        max_records: int,
    ) -> None:
        self.consumer = consumer
        self.transport = transport
        self.handle = handle
        self.sources = dict(sources)
        self.max_records = max_records
        self.paused = False
        #: partitions being given up: their records are no longer handed over
        self.revoking: set[tuple[str, int]] = set()
        self.handed = 0
        self.error = ""
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        from aiokafka.errors import ConsumerStoppedError, KafkaError

        consumer, book = self.consumer, self.transport.book
        while not self._stopping:
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self.max_records)
            except ConsumerStoppedError:
                return
            except KafkaError as exc:
                self.error = f"fetch failing: {exc!r}"
                log.warning("getmany failed, retrying: %r", exc)
                await asyncio.sleep(0.5)
                continue
            self.error = ""
            if batches:
                # let the fetcher ask for the next records of the drained partitions before the
                # CPU goes to translating these: the broker's work overlaps the worker's
                await asyncio.sleep(0)
            for tp, records in batches.items():
                if not records or (tp.topic, tp.partition) in self.revoking or self._stopping:
                    continue  # given up meanwhile: the new owner reads them from the commit
                deliveries = book.hand_over(tp.topic, tp.partition, records)
                self.handed += len(deliveries)
                self.handle(deliveries, self.sources[tp.topic], str(tp.partition))

    def pause(self) -> None:
        self.paused = True
        self.consumer.pause(*self.consumer.assignment())

    def resume(self) -> None:
        self.paused = False
        self.consumer.resume(*self.consumer.assignment())

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


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
        intake.revoking.update(tps)
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
