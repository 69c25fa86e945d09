"""The worker process: NATS topology, partition consumers, pipeline, reload, health, shutdown.

:class:`Worker` wires the parts together. It owns the partitions of ``--partitions`` (one durable
pull consumer per partition on ``audit.k8s.p<N>`` and one on ``events.p<N>``) and, with
``--shared-consumer``, reads the upstream subjects through the shared durables, skipping (and
acking) any partition subject an upstream-configured ``audit.k8s.>`` / ``events.>`` consumer also
delivers. SIGTERM stops fetching, flushes and acks what is in flight, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

import nats

import processor
from processor.config import Settings
from processor.metrics import Metrics
from processor.service import Service, cancel_tasks
from processor.sink.base import Sink
from processor.sink.factory import open_sink
from processor.sink.migrate import migrate
from processor.stream.connection import connect_options
from processor.stream.consumer import Delivery, PullConsumer, ack_many, request_bytes
from processor.stream.partitions import (
    audit_partition_subject,
    event_partition_subject,
    is_partition_subject,
    parse_partitions,
)
from processor.stream.publisher import JsPublisher
from processor.stream.topology import (
    ensure_consumer,
    ensure_streams,
    output_limits,
    partition_consumer_name,
)
from processor.stream.transport import NatsTransport
from processor.translate import Translator
from processor.worker.advisories import MaxDeliveriesWatch
from processor.worker.health import HealthServer
from processor.worker.pipeline import Pipeline
from processor.worker.reload import PolicyReloader
from processor.worker.sinkthread import sink_executor

log = logging.getLogger(__name__)

SHARED_AUDIT_SUBJECTS = ("audit.k8s.activity", "audit.k8s.retry")
SHARED_EVENT_SUBJECTS = ("events.>",)
LAG_INTERVAL = 5.0


def implementation() -> str:
    """The active per-record implementation (``native`` or ``python``)."""
    from processor.cli import implementation as active

    return active()


class Worker(Service):
    """One worker process.

    Args:
        settings: validated settings.
        policy_paths: policy files/directories (already defaulted by the caller).
        sink: a storage sink to use instead of opening ``settings.clickhouse_url``.
    """

    def __init__(self, settings: Settings, policy_paths: Sequence[str], sink: Sink | None = None):
        self.settings = settings
        self.metrics = Metrics()
        self.partitions = parse_partitions(settings.partitions, settings.partition_count)
        self.sink = sink
        self._own_sink = sink is None
        self._sink_thread = sink_executor(settings.sink_nice)  # every sink call runs on it
        self.reloader = PolicyReloader(
            policy_paths, settings.stages, settings.max_record_bytes, self.metrics, self._swap
        )
        self.nc: Any = None
        self.pub_nc: Any = None
        self.js: Any = None
        self.pipeline: Pipeline | None = None
        self.consumers: list[PullConsumer] = []
        self.advisories: MaxDeliveriesWatch | None = None
        self.health: HealthServer | None = None
        self.ready = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    # -- start ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, provision, load policies and start consuming."""
        s = self.settings
        compiled = self.reloader.load()
        self.metrics.build_info.info(
            {"version": processor.__version__, "implementation": implementation()}
        )
        log.info(
            "activity-processor %s (%s), partitions %s of %d",
            processor.__version__,
            implementation(),
            _ranges(self.partitions),
            s.partition_count,
        )
        loop = asyncio.get_running_loop()
        if self.sink is None:
            url = s.resolved_clickhouse_url()
            self.sink = open_sink(url)
            if s.migrate or url.startswith("chdb:"):  # chDB starts here, on the sink thread
                await loop.run_in_executor(self._sink_thread, migrate, self.sink)
        await loop.run_in_executor(self._sink_thread, self.sink.open)
        self.nc = await nats.connect(**self._connect_options())
        # Publishes get their own connection: on the consuming one, PubAcks would queue behind
        # megabytes of pulled messages and time out under load.
        self.pub_nc = await nats.connect(
            **{**self._connect_options(), "name": "activity-publisher"}
        )
        self.js = self.nc.jetstream()
        await ensure_streams(self.js, provision=s.provision)
        self.pipeline = Pipeline(
            compiled.translator,
            self.sink,
            NatsTransport(self.nc, JsPublisher(self.pub_nc.jetstream())),
            s,
            self.metrics,
            self._sink_thread,
            await output_limits(self.js, self.pub_nc.max_payload),
            on_pressure=self._pressure,
        )
        self._tasks.append(asyncio.ensure_future(self.pipeline.run()))
        await self._start_consumers()
        self.advisories = MaxDeliveriesWatch(
            self.nc,
            self.js,
            [(c.stream, c.durable, "audit" if c.stream == "AUDIT_EVENTS" else "k8s-event")
             for c in self.consumers],
            self.metrics,
            self.pipeline.publish_dead_letter,
        )  # fmt: skip
        await self.advisories.start()
        await self._start_reload()
        await self._start_health()
        self._tasks.append(asyncio.ensure_future(self._watch_lag()))
        self.ready = True

    def _connect_options(self) -> dict[str, Any]:
        m = self.metrics
        return connect_options(
            self.settings.nats_url,
            "activity-processor",
            m.nats_connection_status,
            disconnects=m.nats_disconnects,
            reconnects=m.nats_reconnects,
            errors=m.nats_errors,
        )

    async def _start_consumers(self) -> None:
        s = self.settings
        plans: list[tuple[str, str, str, Sequence[str], str, int]] = []
        for n in self.partitions:
            plans.append(
                (
                    "AUDIT_EVENTS",
                    partition_consumer_name(s.consumer_name, n),
                    "audit",
                    (audit_partition_subject(n),),
                    str(n),
                    s.max_deliver,
                )
            )
            plans.append(
                (
                    "EVENTS",
                    partition_consumer_name(s.event_consumer_name, n),
                    "event",
                    (event_partition_subject(n),),
                    str(n),
                    -1,
                )
            )
        if s.shared_consumer:
            plans.append(
                (
                    "AUDIT_EVENTS",
                    s.consumer_name,
                    "audit",
                    SHARED_AUDIT_SUBJECTS,
                    "shared",
                    s.max_deliver,
                )
            )
            plans.append(
                ("EVENTS", s.event_consumer_name, "event", SHARED_EVENT_SUBJECTS, "shared", -1)
            )
        max_bytes = request_bytes(s.pull_max_bytes, s.pull_budget_bytes, len(plans))
        for stream, durable, source, subjects, label, max_deliver in plans:
            await ensure_consumer(
                self.js,
                stream,
                durable,
                subjects,
                max_ack_pending=s.max_ack_pending,
                ack_wait=s.ack_wait,
                max_deliver=max_deliver,
            )
            consumer = PullConsumer(
                self.nc,
                stream,
                durable,
                self._handler(source, label),
                batch=s.pull_batch,
                max_bytes=max_bytes,
            )
            self.consumers.append(consumer)
        for consumer in self.consumers:
            await consumer.start()
        self.metrics.active_workers.set(len(self.consumers))

    def _handler(self, source: str, label: str) -> Any:
        pipeline = self.pipeline
        assert pipeline is not None
        if label != "shared":
            return lambda deliveries: pipeline.handle(deliveries, source, label)

        async def shared(deliveries: list[Delivery]) -> None:
            own = [d for d in deliveries if not is_partition_subject(d.subject)]
            if own:
                pipeline.handle(own, source, label)
            if len(own) != len(deliveries):
                # an upstream-configured consumer covers the partition subjects too: those
                # records belong to their partition consumer, this one only acknowledges them
                await ack_many(self.nc, [d for d in deliveries if is_partition_subject(d.subject)])

        return shared

    async def _start_reload(self) -> None:
        s = self.settings
        kv = None
        if s.policy_bucket:
            try:
                kv = await self.js.create_key_value(bucket=s.policy_bucket, history=5)
            except Exception:
                kv = await self.js.key_value(s.policy_bucket)
        self.reloader.start(s.watch_interval, kv)

    async def _start_health(self) -> None:
        if not self.settings.health_addr:
            return
        self.health = HealthServer(
            self.settings.health_addr,
            self.metrics,
            # liveness stays ping + nats: a failing sink or publish is an outage elsewhere, and
            # restarting the pod would only redeliver its inputs; readiness reports it instead
            health={"ping": lambda: "", **self._transport_health()},
            ready={
                "started": lambda: "" if self.ready else "starting",
                "policies": self._policy_check,
                "pending": self._pending_check,
                "sink": lambda: self.pipeline.sink_error if self.pipeline else "",
                "publish": lambda: self.pipeline.publish_error if self.pipeline else "",
                **self._transport_ready(),
            },
            refresh=self._oldest_pending,
        )
        await self.health.start()

    def _transport_health(self) -> dict[str, Callable[[], str]]:
        """Liveness checks of the transport (the Kafka worker has its own)."""
        return {"nats": self._nats_check}

    def _transport_ready(self) -> dict[str, Callable[[], str]]:
        """Readiness checks of the transport besides the common ones."""
        return {}

    def _nats_check(self) -> str:
        return "" if self.nc is not None and self.nc.is_connected else "not connected to NATS"

    def _policy_check(self) -> str:
        return "" if self.reloader.current is not None else "no policy set loaded"

    def _pending_check(self) -> str:
        age, bound = self._oldest_pending(), self.settings.ready_max_pending_age
        if age <= bound:
            return ""
        return f"oldest unacknowledged input waited {age:.0f}s (bound {bound:g}s)"

    def _oldest_pending(self) -> float:
        """Seconds the oldest unacknowledged input has waited; also sets its gauge."""
        age = self.pipeline.oldest_pending_age() if self.pipeline is not None else 0.0
        self.metrics.oldest_pending.set(age)
        return age

    # -- running --------------------------------------------------------------------------------
    def _swap(self, translator: Translator) -> None:
        if self.pipeline is not None:
            self.pipeline.set_translator(translator)
        self.settle()

    def _pressure(self, paused: bool) -> None:
        log.info(
            "%s fetching (%d records pending)",
            "pausing" if paused else "resuming",
            self.pipeline.pending_records if self.pipeline else 0,
        )
        for consumer in self.consumers:
            consumer.pause() if paused else consumer.resume()

    async def _watch_lag(self) -> None:
        stalls = 0
        while True:
            await asyncio.sleep(LAG_INTERVAL)
            self._oldest_pending()
            total = sum(c.stats.stalls for c in self.consumers)
            if total > stalls:
                self.metrics.consumer_stalls.inc(total - stalls)
                stalls = total
            for consumer in self.consumers:
                with contextlib.suppress(Exception):
                    info = await self.js.consumer_info(consumer.stream, consumer.durable)
                    self.metrics.consumer_pending.labels(consumer.stream, consumer.durable).set(
                        info.num_pending or 0
                    )
                    self.metrics.consumer_ack_pending.labels(consumer.stream, consumer.durable).set(
                        info.num_ack_pending or 0
                    )

    # -- stop -----------------------------------------------------------------------------------
    async def stop(self, flush_timeout: float = 30.0) -> None:
        """Stop fetching, commit and ack what was received, close everything."""
        self.ready = False
        for consumer in self.consumers:
            await consumer.stop()
        if self.advisories is not None:
            await self.advisories.stop()
        if self.pipeline is not None:
            await self.pipeline.drain_and_stop(flush_timeout, "unacked input will be redelivered")
        await self.reloader.stop()
        await self._stop_tasks()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), 30)
        if self.pub_nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pub_nc.drain(), 30)
        await self._close_sink()

    async def _stop_tasks(self) -> None:
        """Cancel and await the worker's tasks, then stop the health server."""
        await cancel_tasks(self._tasks)
        if self.health is not None:
            await self.health.stop()

    async def _close_sink(self) -> None:
        """Close the sink if the worker opened it, and its thread."""
        if self.sink is not None and self._own_sink:
            await asyncio.get_running_loop().run_in_executor(self._sink_thread, self.sink.close)
        self._sink_thread.shutdown(wait=True)


def _ranges(parts: Sequence[int]) -> str:
    return ",".join(map(str, parts)) if len(parts) <= 8 else f"{parts[0]}-{parts[-1]}"
