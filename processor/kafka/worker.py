"""The Kafka worker: ``activity run --transport kafka`` (docs/kafka.md).

The same :class:`~processor.worker.pipeline.Pipeline`, reloader, health server and metrics as the
NATS worker (:class:`~processor.worker.runner.Worker`, which this extends); only arrival
(:class:`~processor.kafka.intake.KafkaIntake`, an aiokafka consumer group), settlement (offset
commits) and publishing (:class:`~processor.kafka.transport.KafkaTransport`) differ. The group
assigns the partitions: workers scale out and in by starting and stopping, no ``--partitions``.
Policies come from the files and the policy topic (:mod:`processor.kafka.policies`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import processor
from processor.config import Settings
from processor.kafka.fetch import RECORD_SETS
from processor.kafka.fetch import install as install_fetch_hook
from processor.kafka.intake import Handover, KafkaIntake
from processor.kafka.policies import KafkaPolicyWatcher
from processor.kafka.produce import new_producer
from processor.kafka.settings import KafkaSettings
from processor.kafka.topics import ensure_topics
from processor.kafka.transport import KafkaTransport
from processor.sink.base import Sink
from processor.sink.factory import open_sink
from processor.sink.migrate import migrate
from processor.stream.topology import OutputLimits
from processor.worker.pipeline import Pipeline
from processor.worker.runner import LAG_INTERVAL, Worker, implementation

log = logging.getLogger(__name__)

__all__ = ["KafkaWorker"]

#: The largest message the producer sends (its ``max_request_size``) and what outputs may use of
#: it (headers and the record batch's framing reserved).
MAX_REQUEST_BYTES = 1024 * 1024
OUTPUT_BYTES = MAX_REQUEST_BYTES - 16 * 1024


class KafkaWorker(Worker):
    """One Kafka worker process: a member of the consumer group ``settings.kafka_group``.

    Args:
        settings: validated settings (``transport`` = ``kafka``).
        policy_paths: policy files/directories.
        sink: a storage sink to use instead of opening ``settings.clickhouse_url``.
    """

    def __init__(self, settings: Settings, policy_paths: Sequence[str], sink: Sink | None = None):
        super().__init__(settings, policy_paths, sink)
        self.kafka: KafkaSettings = settings.kafka()
        self.consumer: object | None = None
        self.producer: object | None = None
        self.transport: KafkaTransport | None = None
        self.intake: KafkaIntake | None = None
        self.handover: Handover | None = None
        self.policy_watcher: KafkaPolicyWatcher | None = None

    async def start(self) -> None:
        """Open the sink, create the topics, join the group and start consuming."""
        from aiokafka import AIOKafkaConsumer

        s, k = self.settings, self.kafka
        compiled = self.reloader.load()
        self.metrics.build_info.info(
            {"version": processor.__version__, "implementation": implementation()}
        )
        log.info(
            "activity-processor %s (%s), Kafka %s, group %s, topics %s",
            processor.__version__,
            implementation(),
            k.brokers,
            k.group_id,
            ",".join(k.input_topics),
        )
        loop = asyncio.get_running_loop()
        if self.sink is None:
            url = s.resolved_clickhouse_url()
            self.sink = open_sink(url)
            if s.migrate or url.startswith("chdb:"):
                await loop.run_in_executor(self._sink_thread, migrate, self.sink)
        await loop.run_in_executor(self._sink_thread, self.sink.open)
        if s.provision:
            await ensure_topics(k)
        self.producer = producer = new_producer(  # not idempotent: ids dedup instead
            k.bootstrap,
            k.compression,
            client_id="activity-publisher",
            linger_ms=2,
            max_request_size=MAX_REQUEST_BYTES,
        )
        await producer.start()
        sets = install_fetch_hook()  # fetched record sets decoded off the event loop
        self.consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap,
            client_id="activity-processor",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=s.pull_max_bytes,
            fetch_max_bytes=s.pull_budget_bytes,
            value_deserializer=RECORD_SETS if sets else None,
            **k.consumer_options(),
        )
        self.transport = transport = KafkaTransport(
            consumer, producer, k.activity_topic, k.dead_letter_topic, k.partitions
        )
        self.pipeline = pipeline = Pipeline(
            compiled.translator,
            self.sink,
            transport,
            s,
            self.metrics,
            self._sink_thread,
            OutputLimits(OUTPUT_BYTES, OUTPUT_BYTES),
            on_pressure=self._pressure,
        )
        self._tasks.append(asyncio.ensure_future(pipeline.run()))
        sources = {k.audit_topic: "audit", k.event_topic: "event"}
        self.intake = intake = KafkaIntake(
            consumer, transport, pipeline.handle, sources, k.max_records, reject=pipeline.reject
        )
        self.handover = Handover(
            intake, pipeline.flush, k.rebalance_timeout * 0.8, self.metrics, self._lag_label
        )
        await consumer.start()
        consumer.subscribe(list(k.input_topics), listener=self.handover.listener())
        await intake.start()
        self.metrics.active_workers.set(1)
        self.reloader.start(s.watch_interval, None)
        if s.policy_bucket:  # the shared policy store: the policy topic on Kafka
            self.policy_watcher = KafkaPolicyWatcher(k, self.reloader, s.watch_interval)
            self.policy_watcher.start()
        await self._start_health()
        self._tasks.append(asyncio.ensure_future(self._watch_lag()))
        self.ready = True

    def _lag_label(self, partition: int) -> str:
        return f"{self.kafka.group_id}-p{partition}"

    def _transport_health(self) -> dict[str, Callable[[], str]]:
        return {"kafka": self._kafka_check}

    def _transport_ready(self) -> dict[str, Callable[[], str]]:
        return {"commit": lambda: self.transport.commit_error if self.transport else ""}

    def _kafka_check(self) -> str:
        if self.intake is None:
            return "not started"
        if not self.intake.running and self.ready:
            return "the consumer stopped"
        return self.intake.health

    def _pressure(self, paused: bool) -> None:
        log.info(
            "%s fetching (%d records pending)",
            "pausing" if paused else "resuming",
            self.pipeline.pending_records if self.pipeline else 0,
        )
        if self.intake is not None:
            self.intake.pause() if paused else self.intake.resume()

    async def _watch_lag(self) -> None:
        """Every :data:`LAG_INTERVAL`, per partition: the lag (high watermark - position, as
        ``consumer_pending_messages``) and the records handed over and not committed
        (``consumer_ack_pending_messages``)."""
        while True:
            await asyncio.sleep(LAG_INTERVAL)
            self._oldest_pending()
            with contextlib.suppress(Exception):
                await self._lag()

    async def _lag(self) -> None:
        consumer, transport, m = self.consumer, self.transport, self.metrics
        if consumer is None or transport is None:
            return
        for tp in list(consumer.assignment()):  # type: ignore[attr-defined]
            high = consumer.highwater(tp)  # type: ignore[attr-defined]
            if high is None:
                continue  # nothing fetched yet
            position = await asyncio.wait_for(consumer.position(tp), 1.0)  # type: ignore[attr-defined]
            label = self._lag_label(tp.partition)
            m.consumer_pending.labels(tp.topic, label).set(max(0, high - position))
            unsettled = transport.book.unsettled((tp.topic, tp.partition))
            m.consumer_ack_pending.labels(tp.topic, label).set(unsettled)

    async def stop(self, flush_timeout: float = 30.0) -> None:
        """Stop fetching, store and commit what was handed over, leave the group."""
        self.ready = False
        if self.intake is not None:
            await self.intake.stop()
        if self.pipeline is not None:
            await self.pipeline.drain_and_stop(flush_timeout, "uncommitted input will be re-read")
        if self.transport is not None:
            await self.transport.commit()
        await self.reloader.stop()
        if self.policy_watcher is not None:
            await self.policy_watcher.stop()
        await self._stop_tasks()
        for client in (self.consumer, self.producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), 30)  # type: ignore[attr-defined]
        await self._close_sink()
