"""``activity reconcile --transport kafka``: the inventory reconciler as a Faust application.

The transition logic is the NATS reconciler's (:class:`~processor.reconciler.service.Reconciler`,
reused as is); what differs is where state lives and how input arrives:

* **Input.** The Faust app's consumer group assigns the partitions; the audit and Events topics
  themselves are read by one raw aiokafka consumer (``getmany`` batches, no per-event
  machinery: Faust's stream read 0.13x a raw loop with the same filter on audit records and
  0.05-0.08x on Events, this path 0.3-0.6x and 0.4x; ``tests/bench/reconciler_rate.py``)
  assigned, of both, the partitions the group gave the app of
  ``<consumer_name>-controller-events``, each read from the position stored in the table.
  Controller Events (keyed by their Event's object) are
  forwarded from those batches to that internal topic, the few annotated
  ``inventory.miloapis.com/event-type`` only, partitioned like the audit topic: all input of one
  object meets in one partition, and so in one reconciler, whose Faust agent applies them.
* **State.** Per-object state is a Faust Table (``<consumer_name>-<state_bucket>``) whose
  changelog is partitioned like the audit topic (the object's partition). A batch's state
  changes, and then the audit positions after it, are written to the changelog and acknowledged
  by the brokers before the next batch (controller Events: before Faust may commit their
  offsets, which it does only after flushing its producer), so a restart neither repeats a
  transition nor loses one, as on NATS; a crash between the two re-reads a batch, which the
  ordering guard makes harmless. On a revoke the reconciler stops applying and publishing, and
  writes what it changed, before Faust hands the partitions over; after a rebalance, once the
  table is recovered (up to a fence record: :mod:`processor.kafka.recovery`), it reloads the
  unpublished Events of the partitions it now owns. So a rebalance publishes no Event twice; a
  crash between a publish and the write after it (kill -9) publishes it again, with its uid.
* **Output.** Derived Events go to the Events topic, partitioned with
  :func:`~processor.subjects.event_partition` and keyed by the involved object.

Recovery reads the whole changelog of the owned partitions: tansu never compacted one in our
measurements (issue 27), so recovery time grows with the number of state writes. One write per
inventory object per batch that changed it (not per audit record), and inventory objects change
rarely; docs/kafka.md gives the measured recovery rate, and a real Kafka compacts the changelog
to one record per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import orjson

from processor.kafka.settings import KafkaSettings
from processor.reconciler.conditions import INVENTORY_GROUP, RESOURCES, observe
from processor.reconciler.inputs import audit_records, controller_event_identity
from processor.reconciler.service import Reconciler
from processor.reconciler.settings import ReconcilerSettings
from processor.reconciler.state import StateError, StateStore
from processor.reconciler.transitions import ObjectState
from processor.service import cancel_tasks
from processor.stream.publisher import PublishError
from processor.subjects import event_partition, event_partition_key, partition_of

__all__ = ["KafkaEventPublisher", "KafkaReconciler", "TableStateStore"]

log = logging.getLogger(__name__)

RETRY_DELAY = 2.0
#: Input records per fetch (one changelog write of the states they changed).
AUDIT_BATCH = 2000
#: Seconds between writes of the input positions to the table.
POSITION_INTERVAL = 5.0
_EVENT_TYPE_BYTES = b"inventory.miloapis.com/event-type"
_KINDS = {kind.lower(): kind for kind in RESOURCES}
#: Table keys ``~audit.<partition>`` and ``~events.<partition>``: an input topic's next offset.
AUDIT, EVENTS = "~audit", "~events"
_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


def object_partition(kind: str, name: str, count: int) -> int:
    """The audit partition of an inventory object (where all its state and input meet)."""
    return partition_of(INVENTORY_GROUP, RESOURCES[kind], "", name, count)


class TableStateStore(StateStore):
    """:class:`StateStore` on a Faust Table: the same cache, written to the table's changelog.

    Writes name their changelog partition (the object's audit partition), so the tick that
    publishes due Events can write outside an agent, as well as the agents.

    Args:
        table: a Faust Table of raw bytes keys and values.
        partitions: the partition count of the audit topic and the changelog.
        owned: the partitions this reconciler owns now.
        producer: an aiokafka producer with ``acks="all"`` (Faust's changelog producer does
            not wait for acks; :meth:`flush` does).
    """

    def __init__(
        self, table: Any, partitions: int, owned: Callable[[], set[int]], producer: Any
    ) -> None:
        super().__init__(kv=None)
        self.table = table
        self.partitions = partitions
        self.owned = owned
        self.producer = producer
        self.topic = table.changelog_topic.get_topic_name()
        self._positions: dict[str, int] = {}

    def _partition(self, key: str) -> int:
        kind, _, name = key.partition(".")
        if kind in (AUDIT, EVENTS):
            return int(name)
        return object_partition(_KINDS[kind], name, self.partitions)

    def set_position(self, stream: str, partition: int, offset: int) -> None:
        """Remember an input topic's next offset of ``partition`` (``stream``: :data:`AUDIT` or
        :data:`EVENTS`), written by :meth:`flush` after the states its records changed, into
        the same changelog partition."""
        self._positions[f"{stream}.{partition}"] = offset

    def position(self, stream: str, partition: int) -> int | None:
        """The stored next offset of ``partition`` of an input topic (None: none yet)."""
        raw = self.table.data.get(f"{stream}.{partition}".encode())
        return int(raw) if raw else None

    def with_pending(self) -> list[ObjectState]:
        """Cached states holding unpublished Events, of the partitions owned now only."""
        owned = self.owned()
        return [s for s in super().with_pending() if self._partition(s.key) in owned]

    async def _load(self, key: str) -> ObjectState | None:
        raw = self.table.data.get(key.encode())
        if not raw:
            return None
        try:
            return ObjectState.from_json(orjson.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("state %r is unreadable, starting afresh: %s", key, exc)
            return None

    async def flush(self, positions: bool = False) -> int:
        """Write every dirty state to the table and wait until the brokers have them.

        Args:
            positions: write the audit positions too (after the states). They need not be
                current: a position behind the states re-reads records the ordering guard then
                skips, so they are written every :data:`POSITION_INTERVAL` s, on a revoke and on
                stop, not after every batch (tansu does not compact the changelog).
        """
        writes: list[tuple[str, bytes | None]] = [
            (key, orjson.dumps(self._cache[key].to_json())) for key in sorted(self._dirty)
        ]
        writes += [(key, None) for key in sorted(self._deleted)]
        written = dict(self._positions) if positions else {}
        writes += [(key, str(offset).encode()) for key, offset in sorted(written.items())]
        if not writes:
            return 0
        store = self.table.data
        sent = []
        try:
            for key, value in writes:
                raw_key, partition = key.encode(), self._partition(key)
                if value is None:
                    store.pop(raw_key, None)
                else:
                    store[raw_key] = value
                with contextlib.suppress(AttributeError):  # memory store: drop on revoke
                    store._key_partition[raw_key] = partition
                sent.append(
                    await self.producer.send(self.topic, value, key=raw_key, partition=partition)
                )
            await asyncio.gather(*sent)
        except Exception as exc:
            raise StateError(f"writing {len(writes)} states to the changelog: {exc}") from exc
        self._dirty.clear()
        self._deleted.clear()
        for key, offset in written.items():
            if self._positions.get(key) == offset:
                del self._positions[key]
        return len(writes)

    def drop_cache(self) -> None:
        """Forget the cached states, once they are written (on a revoke and after a rebalance:
        the table holds the truth, and the recovery after a rebalance brings it up to date)."""
        if self.dirty:
            raise StateError(f"{self.dirty} states not written yet")
        self._cache.clear()

    async def load_pending(self) -> int:
        """Load the owned states holding unpublished Events from the table."""
        found, owned = 0, self.owned()
        for raw_key, raw in list(self.table.data.items()):
            key = raw_key.decode()
            if key in self._cache or not raw or key.partition(".")[0] not in _KINDS:
                continue
            if self._partition(key) not in owned:
                continue
            state = await self._load(key)
            if state is not None and state.pending:
                self._cache[key] = state
                found += 1
        return found


async def create_topics(kafka: KafkaSettings, specs: list[tuple[str, int, dict[str, str]]]) -> None:
    """Create the ``(name, partitions, config)`` topics that do not exist yet.

    Raises:
        StateError: the brokers are unreachable or a creation failed.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        for name, partitions, config in specs:
            if name in existing:
                continue
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config)])
    except KafkaError as exc:
        raise StateError(f"creating the reconciler's topics: {exc}") from exc
    finally:
        await admin.close()


class KafkaEventPublisher:
    """Publishes derived Events to the Events topic (``publish_all`` as :class:`JsPublisher`)."""

    def __init__(self, settings: KafkaSettings) -> None:
        from aiokafka import AIOKafkaProducer

        self.settings = settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", linger_ms=5
        )

    async def start(self) -> None:
        await self.producer.start()

    async def publish_all(self, items: list[tuple[str, bytes, str]]) -> None:
        """Send ``(subject, data, uid)`` items; the subject is unused on Kafka.

        Raises:
            PublishError: some sends were not acknowledged.
        """
        futures = []
        for _, data, _uid in items:
            event = orjson.loads(data)
            key = "/".join(event_partition_key(event)).encode()
            partition = event_partition(event, self.settings.partitions)
            futures.append(
                await self.producer.send(
                    self.settings.event_topic, data, key=key, partition=partition
                )
            )
        results = await asyncio.gather(*futures, return_exceptions=True)
        errors = [str(r) for r in results if isinstance(r, BaseException)]
        if errors:
            raise PublishError(len(errors), len(items), sorted(set(errors))[:5])

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.producer.stop()


class KafkaReconciler(Reconciler):
    """The reconciler on Kafka (see the module docstring).

    Args:
        settings: the reconciler's settings (its NATS fields are unused).
        kafka: brokers, topics and the partition count.
    """

    def __init__(self, settings: ReconcilerSettings, kafka: KafkaSettings) -> None:
        super().__init__(settings)
        self.kafka = kafka
        self.app: Any = None
        self.reader: Any = None  # the raw consumer of the audit and Events topics
        self.marks_topic = f"{settings.consumer_name}-controller-events"
        #: partitions whose input is applied; those of both topics the reader is assigned
        self.reading: set[int] = set()
        self._assigned: set[int] = set()
        self._positions_written = 0.0
        self._reload_pending = True

    # -- start ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the Faust app (join the group), the publisher, the tick and the health server."""
        from processor.kafka.app import make_app

        s, k = self.settings, self.kafka
        app = self.app = make_app(s.consumer_name, k)
        n = k.partitions
        marks = app.topic(self.marks_topic, partitions=n, **_RAW)
        table = app.Table(
            s.state_bucket, partitions=n, default=None, key_type=bytes, value_type=bytes
        )
        publisher = KafkaEventPublisher(k)
        await publisher.start()
        self.store = TableStateStore(table, n, self._owned_partitions, publisher.producer)
        # created before the group is joined: a topic appearing later would force a rebalance
        await create_topics(
            k,
            [
                (marks.get_topic_name(), n, {}),
                (table.changelog_topic.get_topic_name(), n, {"cleanup.policy": "compact"}),
                (f"{s.consumer_name}-__assignor-__leader", 1, {}),
            ],
        )
        self.publisher = cast(Any, publisher)
        batch = s.pull_batch

        @app.agent(marks, name="controller-events")
        async def on_marks(stream: Any) -> None:
            async for values in stream.take(batch, within=0.05):
                await self._marks_batch(values)

        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_rebalance)
        from aiokafka import AIOKafkaConsumer

        self.reader = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap,
            client_id=f"{s.consumer_name}-input",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=s.pull_max_bytes,
            fetch_max_bytes=s.pull_budget_bytes,
            # drained partitions (the Events topic, mostly) must not hold the others' fetch back
            fetch_max_wait_ms=int(k.fetch_max_wait * 1000),
        )
        await self.reader.start()
        await app.start()
        log.info(
            "reconciler on Kafka %s: group %s, %s and %s in, events to %s",
            k.brokers,
            s.consumer_name,
            k.audit_topic,
            k.event_topic,
            k.event_topic,
        )
        self._tasks.append(asyncio.ensure_future(self._tick()))
        self._tasks.append(asyncio.ensure_future(self._read_input()))
        await self._start_health()
        self.ready = True

    def _owned_partitions(self) -> set[int]:
        """The partitions the group assigned this reconciler (of the controller-events topic)."""
        topic = self.marks_topic
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def owns(self, kind: str, name: str) -> bool:
        """Whether this reconciler owns the object's partition now (its input arrives here)."""
        return object_partition(kind, name, self.kafka.partitions) in self._owned_partitions()

    def _settled(self) -> bool:
        """Whether no rebalance or table recovery is under way (the table may then be used)."""
        return not (self.app.rebalancing or self.app.in_recovery)

    async def _on_rebalance(self, *args: Any, **kwargs: Any) -> None:
        self._reload_pending = True

    async def _on_revoked(self, *args: Any, **kwargs: Any) -> None:
        """Stop applying and publishing before Faust hands the partitions over: Faust awaits
        this, and the lock waits for a batch or a publish in hand, whose states and positions
        are then written and the cache dropped (the table holds the truth)."""
        async with self._lock:
            self.reading = set()
            self._reload_pending = True
            store = cast(TableStateStore, self._state())
            try:
                await store.flush(positions=True)
                store.drop_cache()
            except StateError as exc:  # its new owner re-reads a little more
                log.warning("writing the state before a rebalance failed: %s", exc)

    async def _start_health(self) -> None:
        if not self.settings.health_addr:
            return
        from processor.worker.health import HealthServer

        def joined() -> str:  # a member without partitions (more pods than them) is ready
            if self.app is None or getattr(self.app, "rebalancing", False):
                return "joining the consumer group"
            return ""

        self.health = HealthServer(
            self.settings.health_addr,
            cast(Any, self.metrics),
            health={"ping": lambda: ""},
            ready={"started": lambda: "" if self.ready else "starting", "group": joined},
        )
        await self.health.start()

    # -- input: a raw consumer on the partitions the group gave the Faust app -------------------
    async def _read_input(self) -> None:
        """Fetch audit and Events batches (aiokafka ``getmany``, no per-event machinery) of
        the owned partitions; positions live in the table, written after what they produced."""
        while True:
            try:
                await self._follow_assignment()
                if not self.reading:
                    await asyncio.sleep(0.05)
                    continue
                batches = await self.reader.getmany(timeout_ms=200, max_records=AUDIT_BATCH)
                if batches:
                    await self._input_batch(batches)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.errors.labels("consume").inc()
                log.warning("reading the input topics failed, retrying: %s", exc)
                await asyncio.sleep(RETRY_DELAY)

    async def _follow_assignment(self) -> None:
        """Once a rebalance and the table's recovery are over, read the partitions the group
        assigned (those of the controller-events topic) of both input topics, each from its
        stored position."""
        if not self._settled():
            return
        from aiokafka import TopicPartition

        wanted = self._owned_partitions()
        if wanted == self._assigned and wanted == self.reading:
            return
        async with self._lock:
            store = cast(TableStateStore, self._state())
            await store.flush(positions=True)
            k = self.kafka
            topics = ((AUDIT, k.audit_topic), (EVENTS, k.event_topic))
            self.reader.assign(
                [TopicPartition(topic, p) for _, topic in topics for p in sorted(wanted)]
            )
            for stream, topic in topics:
                for p in sorted(wanted):
                    position = store.position(stream, p)
                    if position is None:
                        await self.reader.seek_to_beginning(TopicPartition(topic, p))
                    else:
                        self.reader.seek(TopicPartition(topic, p), position)
            self._assigned = set(wanted)
            self.reading = set(wanted)
            log.info("reconciler: input partitions %s", ",".join(map(str, sorted(wanted))))

    async def _input_batch(self, batches: dict[Any, list[Any]]) -> None:
        while True:
            async with self._lock:
                try:
                    await self._apply_batches(batches)
                    return
                except (StateError, PublishError) as exc:
                    self._failed(exc)
            # applying again is harmless: the ordering guard skips what was applied, and a
            # controller Event forwarded twice only marks its transition twice
            await asyncio.sleep(RETRY_DELAY)

    async def _apply_batches(self, batches: dict[Any, list[Any]]) -> None:
        if not self._settled():
            # a rebalance began after the fetch: whoever owns these partitions afterwards
            # reads them from the stored positions (this reader too, sought again)
            self.reading = set()
            return
        store = cast(TableStateStore, self._state())
        await self._maybe_reload_pending()
        for tp, records in batches.items():
            if tp.partition not in self.reading or not records:
                continue  # revoked meanwhile: its new owner reads it from the stored position
            if tp.topic == self.kafka.event_topic:
                await self._forward_controller_events(records)
                store.set_position(EVENTS, tp.partition, records[-1].offset + 1)
                continue
            self.metrics.messages.labels("AUDIT_EVENTS").inc(len(records))
            for message in records:
                for record in audit_records(message.value, self._undecodable):
                    obs = observe(record, self.settings.conditions)
                    if obs is not None:
                        await self._apply(obs)
            store.set_position(AUDIT, tp.partition, records[-1].offset + 1)
        self._count_pending()
        now = time.monotonic()
        due = now - self._positions_written >= POSITION_INTERVAL
        await store.flush(positions=due)
        if due:
            self._positions_written = now
        if self.settings.grace == 0:
            await self._publish_due()

    async def _forward_controller_events(self, records: list[Any]) -> None:
        """Send the controller Events among ``records`` (of the Events topic) to the
        controller-events topic, in their object's partition, and wait for the brokers.

        Raises:
            PublishError: some were not acknowledged (the batch is read again).
        """
        self.metrics.messages.labels("EVENTS").inc(len(records))
        producer = cast(TableStateStore, self._state()).producer
        sent = []
        for record in records:
            data = record.value
            if data is None or _EVENT_TYPE_BYTES not in data:
                continue
            try:
                found = controller_event_identity(orjson.loads(data))
            except orjson.JSONDecodeError:
                self.metrics.errors.labels("decode").inc()
                continue
            if found is None:
                continue
            kind, name, _ = found
            partition = object_partition(kind, name, self.kafka.partitions)
            key = f"{kind.lower()}.{name}".encode()
            sent.append(await producer.send(self.marks_topic, data, key=key, partition=partition))
        results = await asyncio.gather(*sent, return_exceptions=True)
        errors = [str(r) for r in results if isinstance(r, BaseException)]
        if errors:
            self.metrics.errors.labels("publish").inc()
            raise PublishError(len(errors), len(sent), sorted(set(errors))[:5])

    async def _marks_batch(self, values: list[bytes]) -> None:
        while True:
            async with self._lock:
                try:
                    await self._maybe_reload_pending()
                    for data in values:
                        await self._controller_event(data)
                    await self._state().flush()
                    self._count_pending()
                    return
                except StateError as exc:
                    self._failed(exc)
            await asyncio.sleep(RETRY_DELAY)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, StateError):
            self.metrics.errors.labels("state").inc()
        self.metrics.retries.labels("batch").inc()
        log.warning("reconciler batch failed, retrying in %.0fs: %s", RETRY_DELAY, exc)

    async def _maybe_reload_pending(self) -> None:
        """After a rebalance and the table's recovery: drop the cache, load the owned
        unpublished Events (under the lock).

        Raises:
            StateError: the cache could not be written first (it is kept; retried later).
        """
        if not self._reload_pending or self.app is None or not self._settled():
            return
        store = cast(TableStateStore, self._state())
        await store.flush()
        store.drop_cache()
        self._reload_pending = False
        waiting = await store.load_pending()
        if waiting:
            log.info("reconciler: %d objects with unpublished events after a rebalance", waiting)
        self._count_pending()

    async def _tick(self) -> None:
        interval = min(max(self.settings.grace / 4, 0.05), 1.0)
        while True:
            await asyncio.sleep(interval)
            if not self._settled():
                # the recovery replays the changelog into the table: a state written now
                # could be overwritten by an older one, and its Event published twice
                continue
            async with self._lock:
                try:
                    await self._maybe_reload_pending()
                except StateError as exc:  # the cache may hold what another owns now
                    self._failed(exc)
                    continue
                await self._publish_due()

    # -- stop -----------------------------------------------------------------------------------
    async def stop(self) -> None:
        """Leave the group (committing what was handled); pending Events stay in the table.

        The tasks are cancelled under the lock, so never between a publish and the write of
        the state that records it (the next owner would publish the Event again)."""
        self.ready = False
        async with self._lock:
            await cancel_tasks(self._tasks)
            self._tasks.clear()
            if self.store is not None:
                with contextlib.suppress(StateError):
                    await cast(TableStateStore, self.store).flush(positions=True)
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader.stop()
        if self.app is not None:
            with contextlib.suppress(Exception):
                await self.app.stop()
        if self.publisher is not None:
            await self.publisher.close()
        if self.health is not None:
            await self.health.stop()
