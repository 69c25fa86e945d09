"""``activity reconcile``: the sidecar that turns inventory condition changes into Events.

Inputs, each through this reconciler's own durable consumers:

* the audit stream: one consumer per owned partition (``audit.k8s.p<N>``) and, with
  ``shared_consumer``, one on the upstream subject ``audit.k8s.activity``. Every successful write
  of an inventory object is an :class:`~processor.reconciler.conditions.Observation`; the
  transition rules (:mod:`~processor.reconciler.transitions`) decide which changes to report.
* ``EVENTS`` (``events.>``): Events the inventory controllers emitted themselves
  (annotated ``inventory.miloapis.com/event-type``, without the reconciler's ``derived-by``
  mark). A derived Event for the same transition is dropped, so nothing shows twice.

A derived Event waits ``grace`` seconds in the object's state (the controller's own Event may
still be on its way), then is published to ``events.<namespace>`` with its uid as message id.
Input is acknowledged only after the states it changed are in the KV bucket, so a restart
neither repeats a transition (the state says it was reported) nor loses one (the input is
redelivered, or the unpublished Event is still in the state). Failures are logged, counted
(``activity_reconciler_errors_total``) and retried: a batch whose state cannot be written is
nak'ed with a delay; a publish that fails is retried on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any, cast

import nats
import orjson

from processor.reconciler.conditions import INVENTORY_GROUP, RESOURCES, Observation, observe
from processor.reconciler.events import build_event, event_subject, transition_key
from processor.reconciler.inputs import audit_records, controller_event_identity
from processor.reconciler.metrics import ReconcilerMetrics
from processor.reconciler.settings import ReconcilerSettings
from processor.reconciler.state import StateError, StateStore, open_bucket
from processor.reconciler.transitions import (
    ControllerMark,
    ObjectState,
    apply,
    is_stale,
    near,
    remember_mark,
    take_mark,
)
from processor.records.timefmt import format_micro
from processor.service import Service, cancel_tasks
from processor.stream.connection import connect_options
from processor.stream.consumer import (
    Delivery,
    PullConsumer,
    ack_many,
    nak_many,
    request_bytes,
)
from processor.stream.partitions import audit_partition_subject, parse_partitions
from processor.stream.publisher import JsPublisher, PublishError
from processor.stream.topology import ensure_consumer, ensure_streams, partition_consumer_name
from processor.subjects import partition_of

__all__ = ["SHARED_AUDIT_SUBJECTS", "Reconciler"]

log = logging.getLogger(__name__)

SHARED_AUDIT_SUBJECTS = ("audit.k8s.activity",)
EVENT_SUBJECTS = ("events.>",)
RETRY_DELAY = 2.0
_EVENT_TYPE_BYTES = b"inventory.miloapis.com/event-type"


class Reconciler(Service):
    """One reconciler process (usually a sidecar of a worker).

    Args:
        settings: validated settings.
    """

    def __init__(self, settings: ReconcilerSettings) -> None:
        self.settings = settings
        self.metrics = ReconcilerMetrics()
        self.partitions = frozenset(parse_partitions(settings.partitions, settings.partition_count))
        self.nc: Any = None
        self.js: Any = None
        self.store: StateStore | None = None
        self.publisher: JsPublisher | None = None
        self.consumers: list[PullConsumer] = []
        self.health: Any = None
        self.ready = False
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    # -- start ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, provision, load unpublished Events, start consuming and publishing."""
        s = self.settings
        self.nc = await nats.connect(**self._connect_options())
        self.js = self.nc.jetstream()
        await ensure_streams(self.js, provision=s.provision)
        self.store = StateStore(await open_bucket(self.js, s.state_bucket, create=s.provision))
        self.publisher = JsPublisher(self.js)
        waiting = await self.store.load_pending()
        log.info(
            "reconciler: partitions %s of %d, events to events.%s, %d objects with unpublished "
            "events",
            ",".join(map(str, sorted(self.partitions))),
            s.partition_count,
            s.namespace,
            waiting,
        )
        await self._start_consumers()
        self._tasks.append(asyncio.ensure_future(self._tick()))
        await self._start_health()
        self.ready = True

    def _connect_options(self) -> dict[str, Any]:
        return connect_options(
            self.settings.nats_url, "activity-reconciler", self.metrics.nats_connection_status
        )

    def _plans(self) -> list[tuple[str, str, tuple[str, ...], Any]]:
        s = self.settings
        plans: list[tuple[str, str, tuple[str, ...], Any]] = [
            (
                "AUDIT_EVENTS",
                partition_consumer_name(s.consumer_name, n),
                (audit_partition_subject(n),),
                self._on_audit,
            )
            for n in sorted(self.partitions)
        ]
        if s.shared_consumer:
            plans.append(("AUDIT_EVENTS", s.consumer_name, SHARED_AUDIT_SUBJECTS, self._on_audit))
        plans.append(("EVENTS", f"{s.consumer_name}-events", EVENT_SUBJECTS, self._on_events))
        return plans

    async def _start_consumers(self) -> None:
        s = self.settings
        plans = self._plans()
        max_bytes = request_bytes(s.pull_max_bytes, s.pull_budget_bytes, len(plans))
        for stream, durable, subjects, handler in plans:
            await ensure_consumer(
                self.js,
                stream,
                durable,
                subjects,
                max_ack_pending=s.max_ack_pending,
                ack_wait=s.ack_wait,
                max_deliver=-1,
            )
            consumer = PullConsumer(
                self.nc, stream, durable, handler, batch=s.pull_batch, max_bytes=max_bytes
            )
            self.consumers.append(consumer)
        for consumer in self.consumers:
            await consumer.start()

    async def _start_health(self) -> None:
        if not self.settings.health_addr:
            return
        from processor.worker.health import HealthServer

        def nats_check() -> str:
            return "" if self.nc is not None and self.nc.is_connected else "not connected to NATS"

        self.health = HealthServer(
            self.settings.health_addr,
            cast(Any, self.metrics),
            health={"ping": lambda: "", "nats": nats_check},
            ready={"started": lambda: "" if self.ready else "starting"},
        )
        await self.health.start()

    # -- audit ----------------------------------------------------------------------------------
    async def _on_audit(self, deliveries: list[Delivery]) -> None:
        self.metrics.messages.labels("AUDIT_EVENTS").inc(len(deliveries))
        async with self._lock:
            try:
                for delivery in deliveries:
                    for record in audit_records(delivery.data, self._undecodable):
                        obs = observe(record, self.settings.conditions)
                        if obs is not None:
                            await self._apply(obs)
                await self._state().flush()
            except (StateError, PublishError) as exc:
                await self._retry_batch(deliveries, exc)
                return
            await ack_many(self.nc, deliveries)
            self._count_pending()  # once per batch: it walks the cached states
            if self.settings.grace == 0:
                await self._publish_due()

    def owns(self, kind: str, name: str) -> bool:
        """Whether the object's partition is one of this reconciler's."""
        plural = RESOURCES[kind]
        count = self.settings.partition_count
        return partition_of(INVENTORY_GROUP, plural, "", name, count) in self.partitions

    async def _apply(self, obs: Observation) -> None:
        m = self.metrics
        if not self.owns(obs.kind, obs.name):
            m.observations.labels("foreign").inc()
            return
        store = self._state()
        state = await store.get(obs.kind, obs.name)
        if obs.deleted:
            m.observations.labels("deleted").inc()
            if state.pending:
                await self._publish([(state, entry) for entry in state.pending])
            store.forget(obs.kind, obs.name)
            return
        if is_stale(state, obs):
            m.observations.labels("stale").inc()
            return
        m.observations.labels("applied").inc()
        when = obs.time or format_micro(datetime.now(UTC))
        for transition in apply(state, obs, self.settings.conditions):
            c = transition.condition
            m.transitions.labels(obs.kind, c.type, "ready" if c.ready else "not_ready").inc()
            event = build_event(
                state,
                transition,
                namespace=self.settings.namespace,
                instance=self.settings.instance,
                time=when,
            )
            etype, reason = transition_key(event)
            if take_mark(state, etype, reason, when, self.settings.controller_window):
                m.suppressed.labels(obs.kind).inc()
                continue
            state.pending.append({"at": time.time(), "event": event})
        store.mark(state)

    # -- controller Events ----------------------------------------------------------------------
    async def _on_events(self, deliveries: list[Delivery]) -> None:
        self.metrics.messages.labels("EVENTS").inc(len(deliveries))
        async with self._lock:
            try:
                for delivery in deliveries:
                    if _EVENT_TYPE_BYTES in delivery.data:
                        await self._controller_event(delivery.data)
                await self._state().flush()
            except StateError as exc:
                await self._retry_batch(deliveries, exc)
                return
            await ack_many(self.nc, deliveries)
            self._count_pending()

    async def _controller_event(self, data: bytes) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.metrics.errors.labels("decode").inc()
            return
        found = controller_event_identity(event)
        if found is None:
            return
        kind, name, when = found
        if not self.owns(kind, name):
            return
        etype, reason = transition_key(event)
        store = self._state()
        state = await store.get(kind, name)
        self.metrics.controller_events.labels(kind).inc()
        if not self._drop_pending(state, etype, reason, when):
            remember_mark(state, ControllerMark(etype, reason, when))
        store.mark(state)

    def _drop_pending(self, state: ObjectState, etype: str, reason: str, when: str) -> bool:
        window = self.settings.controller_window
        for entry in state.pending:
            event = entry["event"]
            if transition_key(event) != (etype, reason):
                continue
            if near(event["eventTime"], when, window):
                state.pending.remove(entry)
                self.metrics.suppressed.labels(state.kind).inc()
                return True
        return False

    # -- publishing -----------------------------------------------------------------------------
    async def _tick(self) -> None:
        interval = min(max(self.settings.grace / 4, 0.05), 1.0)
        while True:
            await asyncio.sleep(interval)
            async with self._lock:
                await self._publish_due()

    async def _publish_due(self, force: bool = False) -> None:
        """Publish the derived Events whose grace period is over (all of them with ``force``)."""
        store = self._state()
        cutoff = time.time() - self.settings.grace
        due = [
            (state, entry)
            for state in store.with_pending()
            for entry in state.pending
            if force or entry.get("at", 0.0) <= cutoff
        ]
        if not due:
            return
        with contextlib.suppress(Exception):
            await self._publish(due)
        try:
            await store.flush()
        except StateError as exc:
            self.metrics.errors.labels("state").inc()
            log.warning("writing reconciler state failed (retrying): %s", exc)
        self._count_pending()

    async def _publish(self, due: list[tuple[ObjectState, dict[str, Any]]]) -> None:
        assert self.publisher is not None
        items = []
        for _, entry in due:
            event = entry["event"]
            meta = event["metadata"]
            items.append((event_subject(meta["namespace"]), orjson.dumps(event), meta["uid"]))
        try:
            await self.publisher.publish_all(items)
        except Exception as exc:
            self.metrics.errors.labels("publish").inc()
            self.metrics.retries.labels("publish").inc()
            log.warning("publishing %d derived events failed (retrying): %s", len(items), exc)
            raise
        for state, entry in due:
            state.pending.remove(entry)
            self._state().mark(state)
            self.metrics.published.labels(state.kind).inc()
        log.debug("published %d derived events", len(items))

    # -- helpers --------------------------------------------------------------------------------
    def _undecodable(self, exc: Exception) -> None:
        self.metrics.errors.labels("decode").inc()
        log.warning("undecodable audit message skipped: %s", exc)

    def _count_pending(self) -> None:
        pending = sum(len(s.pending) for s in self._state().with_pending())
        self.metrics.pending.set(pending)

    def _state(self) -> StateStore:
        if self.store is None:
            raise RuntimeError("reconciler not started")
        return self.store

    async def _retry_batch(self, deliveries: list[Delivery], exc: Exception) -> None:
        if isinstance(exc, StateError):  # publish errors were counted where they happened
            self.metrics.errors.labels("state").inc()
        self.metrics.retries.labels("batch").inc()
        log.warning("%d messages will be redelivered: %s", len(deliveries), exc)
        with contextlib.suppress(Exception):
            await nak_many(self.nc, deliveries, delay=RETRY_DELAY)

    async def stop(self) -> None:
        """Stop consuming; handed-over input is acknowledged, pending Events stay in the bucket."""
        self.ready = False
        for consumer in self.consumers:
            await consumer.stop()
        await cancel_tasks(self._tasks)
        if self.store is not None:
            with contextlib.suppress(StateError):
                await self.store.flush()
        if self.publisher is not None:
            await self.publisher.close()
        if self.health is not None:
            await self.health.stop()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), 10)
