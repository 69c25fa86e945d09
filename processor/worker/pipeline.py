"""The delivery pipeline: translate pulled messages, publish activities, batch inserts, then ack.

The pipeline is the common part of both transports; what differs (how deliveries arrive, are
acknowledged and where outputs go) is the :class:`~processor.transport.Transport` it is given:
:class:`~processor.stream.transport.NatsTransport` or
:class:`~processor.kafka.transport.KafkaTransport`. The text below says NATS; on Kafka "ack" is the
offset commit, ``+WPI`` does not exist, and duplicates on the output topics are told apart by
their ``id`` header.

Data flow for one group of deliveries handed over by a pull consumer (one :class:`Unit`):

1. every payload is translated at once (CPU, on the event loop) into activities and dead letters;
2. a task publishes the unit's activities to ACTIVITIES (``Nats-Msg-Id`` = activity name) and
   its dead letters to ACTIVITY_DEAD_LETTER right away, so live watchers see them within ms;
3. the unit's rows join the open ClickHouse batch, which is flushed by size, bytes or age;
   flushes are sequential (one insert in flight, the next batch fills meanwhile);
4. only when the batch's insert committed *and* every unit's publishes were acknowledged are the
   input messages acked. A message that gave nothing to store or publish (a skipped record, no
   rule matched) has nothing to wait for: it is acked within ``EARLY_ACK_DELAY`` of step 1.

Nothing is dropped: a failing insert or publish is retried with backoff while the pending inputs get
``+WPI`` (in progress) so NATS does not redeliver them, and fetching pauses once
``max_pending_records`` wait. A crash before the ack redelivers the inputs; duplicates are absorbed
by ``Nats-Msg-Id`` on ACTIVITIES and by the storage dedup (insert tokens + ReplacingMergeTree).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from processor.activity import Built
from processor.config import Settings
from processor.deadletter import (
    TOO_LARGE,
    dead_letter_record,
    encode_dead_letter,
    pointer_record,
)
from processor.metrics import Metrics
from processor.service import cancel_tasks
from processor.sink.base import Sink, SinkError
from processor.stream.publisher import PublishError
from processor.stream.topology import OutputLimits
from processor.subjects import activity_subject, dlq_subject
from processor.translate import Origin, Output, Translator
from processor.transport import Item, Message, Transport
from processor.worker.raw import raw_rows

log = logging.getLogger(__name__)

Delivery = Message
#: A delivery and the ends of what it produced in the group's Output (activities, dead letters).
Mark = tuple[Delivery, int, int]
MAX_BACKOFF = 30.0
#: Seconds the deliveries that gave nothing to keep wait, to be acknowledged in one write.
EARLY_ACK_DELAY = 0.05


@dataclass(slots=True)
class Unit:
    """One group of deliveries and what it produced, waiting for its batch to commit."""

    deliveries: list[Delivery]
    rows: dict[str, list[bytes]]
    records: int
    created: float
    publish: asyncio.Task[None] | None = None


@dataclass
class Batch:
    """The open ClickHouse batch: units in arrival order plus running sizes."""

    units: list[Unit] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    records: int = 0
    opened: float = 0.0


class Pipeline:
    """Turns deliveries into committed, published activities and acknowledged inputs.

    Args:
        translator: the policy translator; replaced on reload through :meth:`set_translator`.
        sink: the storage (called from one dedicated thread).
        transport: settles deliveries (ack / offset commit) and publishes activities and dead
            letters (waiting until they are stored).
        settings: batch sizes, limits and flags.
        metrics: the worker's metrics.
        executor: the storage thread (:func:`~processor.worker.sinkthread.sink_executor`) that
            inserts run on; its owner shuts it down.
        limits: the output streams' message sizes (read from the streams at start).
        on_pressure: called with True when fetching must pause and False when it may resume.
    """

    def __init__(
        self,
        translator: Translator,
        sink: Sink,
        transport: Transport,
        settings: Settings,
        metrics: Metrics,
        executor: concurrent.futures.Executor,
        limits: OutputLimits,
        on_pressure: Callable[[bool], None] | None = None,
    ) -> None:
        self.translator = translator
        self.sink = sink
        self.transport = transport
        self.settings = settings
        self.metrics = metrics
        self.limits = limits
        self.on_pressure = on_pressure
        self._batch = Batch()
        self._pending_records = 0
        self._paused = False
        self._wake = asyncio.Event()
        self._stopping = False
        self._commit_lock = asyncio.Lock()  # one commit at a time: the flush loop's or drain's
        self._executor = executor
        self._tasks: list[asyncio.Task[None]] = []
        self._committing: list[Unit] = []
        self._early: list[Delivery] = []  # nothing to keep: acked within EARLY_ACK_DELAY
        self._early_records = 0
        self._early_timer: asyncio.TimerHandle | None = None
        self.committed_messages = 0
        self.committed_records = 0
        self.committed_activities = 0
        #: why the last insert failed ("" once one succeeded): readiness reports it
        self.sink_error = ""
        #: why the last activity or dead-letter publish failed ("" once one succeeded)
        self.publish_error = ""

    # -- intake ---------------------------------------------------------------------------------
    def set_translator(self, translator: Translator) -> None:
        """Use ``translator`` for every delivery from now on (policy reload)."""
        self.translator = translator

    def handle(self, deliveries: Sequence[Delivery], source: str, partition: str) -> None:
        """Translate ``deliveries`` (from ``source`` = ``audit``/``event``) and queue them.

        A delivery that gave nothing to keep (no activity, no dead letter, and no raw row as
        ``store_raw`` is off) waits for nothing: it is acknowledged within
        :data:`EARLY_ACK_DELAY`, with the others of that moment, not at its batch's commit. On
        the skip path that is almost every delivery, so acks flow with the input instead of in
        one burst per commit, and payloads are not held until then.
        """
        out = Output()
        translate = self.translator.translate
        keep_all = self.settings.store_raw
        activities, dead_letters = out.activities, out.dead_letters
        carrying: list[Delivery] = []
        marks: list[Mark] = []
        done: list[Delivery] = []
        made = done_records = 0
        for d in deliveries:
            before = out.records
            translate(d.data, out, source)  # type: ignore[arg-type]
            now = len(activities) + len(dead_letters)
            if now != made or keep_all:
                carrying.append(d)
                marks.append((d, len(activities), len(dead_letters)))
                made = now
            else:
                done.append(d)
                done_records += out.records - before
        self._count(out, source, partition, len(deliveries))
        if carrying:
            unit = self._unit(carrying, marks, out, out.records - done_records, source)
            if keep_all:
                table, rows = raw_rows(carrying, source, self.settings.stages)
                unit.rows.setdefault(table, []).extend(rows)
            self._add(unit)
        if done:
            self._early.extend(done)
            self._early_records += done_records
            if self._early_timer is None:
                loop = asyncio.get_running_loop()
                self._early_timer = loop.call_later(EARLY_ACK_DELAY, self._ack_early_soon)

    def reject(
        self, delivery: Delivery, source: str, partition: str, error: str, error_type: str
    ) -> None:
        """Dead-letter ``delivery`` whole, untranslated (its transport could not read it: a
        corrupt Kafka record batch, docs/kafka.md#decoding-off-the-event-loop), and queue it as
        one record: it is settled once the dead letter is stored."""
        out = Output()
        out.records = out.errors = 1
        kind = "k8s-event" if source == "event" else "audit"
        data = delivery.data
        out.dead(dead_letter_record(kind, data, error, error_type), (data, 0, len(data)))
        self._count(out, source, partition, 1)
        self._add(self._unit([delivery], [(delivery, 0, 1)], out, 1, source))

    def _ack_early_soon(self) -> None:
        self._early_timer = None
        self._tasks.append(asyncio.ensure_future(self._ack_early()))

    async def _ack_early(self) -> None:
        """Acknowledge the deliveries that had nothing to wait for (see :meth:`handle`)."""
        self._tasks = [t for t in self._tasks if not t.done()]
        done, records = self._early, self._early_records
        self._early, self._early_records = [], 0
        if not done:
            return
        try:
            await self.transport.settle(done)
        except Exception as exc:  # connection closed: the server redelivers them
            log.warning("ack of %d messages with nothing to keep failed: %r", len(done), exc)
            return
        self.committed_messages += len(done)
        self.committed_records += records
        self.metrics.records_committed.inc(records)

    def _unit(
        self, deliveries: list[Delivery], marks: list[Mark], out: Output, records: int, source: str
    ) -> Unit:
        """The unit of ``deliveries``: activity rows, and the activities and dead letters to
        publish. An Activity larger than ACTIVITIES takes becomes a dead letter
        (``activity_too_large``); a dead letter larger than the DLQ takes, a pointer to its input
        (:func:`~processor.deadletter.pointer_record`). ``marks`` say which delivery made what."""
        prefix = self.settings.output_subject_prefix
        limit = self.limits.activity_bytes
        activity_rows = []
        items: list[Item] = []
        owners: list[Delivery | None] = []
        dead: list[tuple[dict[str, Any], Origin, Delivery]] = []
        owner = 0
        for i, activity in enumerate(out.activities):
            while marks[owner][1] <= i:
                owner += 1
            data = activity.data
            if len(data) > limit:
                record = _too_large(
                    activity, out.policies[i], out.origins[i], len(data), limit, source
                )
                dead.append((record, out.origins[i], marks[owner][0]))
                continue
            activity_rows.append(data)
            items.append((activity_subject(activity, prefix), data, activity.name))
            owners.append(marks[owner][0])
        owner = 0
        for j, record in enumerate(out.dead_letters):
            while marks[owner][2] <= j:
                owner += 1
            dead.append((record, out.dead_origins[j], marks[owner][0]))
        letters: list[dict[str, Any]] = []
        if self.settings.dlq_enabled:
            ordinals: dict[int, int] = {}  # a delivery's dead letters, numbered in order
            for record, origin, delivery in dead:
                n = ordinals[id(delivery)] = ordinals.get(id(delivery), -1) + 1
                item, record = self._dlq_item(record, origin, delivery, n)
                items.append(item)
                owners.append(delivery)
                letters.append(record)
        elif dead:
            log.warning("dead-letter queue disabled: %d failed records acked", len(dead))
        unit = Unit(deliveries, {"activities": activity_rows}, records, time.monotonic())
        if items:
            unit.publish = asyncio.ensure_future(
                self._publish(items, len(activity_rows), letters, owners)
            )
        return unit

    def _dlq_item(
        self, record: dict[str, Any], origin: Origin, delivery: Delivery, n: int
    ) -> tuple[Item, dict[str, Any]]:
        """The DLQ message of ``record``, the ``n``-th dead letter of ``delivery``, with an id
        that is the same on every redelivery (translation is deterministic), so the stream
        stores it once."""
        buf, start, end = origin
        if buf is not delivery.data:  # text re-encoded from its value: point at the message
            buf, start, end = delivery.data, 0, len(delivery.data)
        stream, seq = self.transport.position(delivery)
        key = (
            f"{stream}\0{seq}\0{n}\0{start}\0{end}\0{record.get('errorType')}\0"
            f"{record.get('policyName')}\0{record.get('ruleIndex')}"
        )
        msg_id = "dlq-" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        subject, data, _ = _dlq_item(record)
        if len(data) > self.limits.dead_letter_bytes:
            record = pointer_record(record, stream, seq, (start, end), buf[start:end])
            subject, data, _ = _dlq_item(record)
        return (subject, data, msg_id), record

    def _add(self, unit: Unit) -> None:
        batch = self._batch
        if not batch.units:
            batch.opened = unit.created
        batch.units.append(unit)
        batch.records += unit.records
        for rows in unit.rows.values():
            batch.rows += len(rows)
            batch.bytes += sum(map(len, rows))
        self._pending_records += unit.records
        self.metrics.pending_records.set(self._pending_records)
        s = self.settings
        if batch.rows >= s.batch_max_records or batch.bytes >= s.batch_max_bytes:
            self._wake.set()
        if self._pending_records >= s.max_pending_records and not self._paused:
            self._set_paused(True)

    def _set_paused(self, paused: bool) -> None:
        self._paused = paused
        self.metrics.paused.set(1 if paused else 0)
        if self.on_pressure is not None:
            self.on_pressure(paused)

    # -- publish --------------------------------------------------------------------------------
    async def _publish(
        self,
        items: list[Item],
        activities: int,
        letters: Sequence[dict[str, Any]] = (),
        owners: Sequence[Delivery | None] = (),
    ) -> None:
        """Publish ``items`` until every one is stored; the last ``len(letters)`` are the dead
        letters, counted once each when the stream stores them (not as a duplicate).
        ``owners[i]`` is the delivery item ``i`` came from (none given: no delivery)."""
        delay = 0.1
        first = len(items) - len(letters)
        counted: set[int] = set()
        if not owners:
            owners = [None] * len(items)
        while True:
            started = time.perf_counter()
            try:
                fresh = await self.transport.publish(items, owners)
            except Exception as exc:
                if isinstance(exc, PublishError):
                    self._count_fresh(exc.fresh, first, letters, counted)
                self.publish_error = f"publish failing: {exc}"
                log.warning(
                    "publish of %d messages failed, retrying in %.1fs: %s", len(items), delay, exc
                )
                self.metrics.events_errored.labels("audit_log", "publish").inc(len(items))
                delay = await _back_off(delay)
                continue
            self._count_fresh(fresh, first, letters, counted)
            self.publish_error = ""
            self.metrics.publish_latency.observe(time.perf_counter() - started)
            self.metrics.messages_published.inc(activities)
            return

    async def publish_dead_letter(
        self, record: dict[str, Any], stream: str, seq: int, data: bytes | None
    ) -> None:
        """Publish a dead letter of the input ``stream``/``seq`` (its ``data``, None if gone)
        that no delivery carries (:mod:`processor.worker.advisories`); returns once stored."""
        subject, body, _ = _dlq_item(record)
        if data is not None and len(body) > self.limits.dead_letter_bytes:
            record = pointer_record(record, stream, seq, (0, len(data)), data)
            subject, body, _ = _dlq_item(record)
        await self._publish([(subject, body, f"dlq-maxdeliver-{stream}-{seq}")], 0, [record])

    def _count_fresh(
        self, fresh: list[int], first: int, letters: Sequence[dict[str, Any]], counted: set[int]
    ) -> None:
        for position in fresh:
            if position >= first and position not in counted:
                counted.add(position)
                self._count_dead_letter(letters[position - first])

    # -- flush ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Flush batches until :meth:`stop`; start this as a task."""
        self._tasks.append(asyncio.ensure_future(self._keepalive()))
        while not self._stopping:
            timeout = self._until_due()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._batch.units and (self._stopping or self._until_due() <= 0 or self._full()):
                await self._commit_queued()

    def _until_due(self) -> float:
        if not self._batch.units:
            return self.settings.batch_max_age
        return self._batch.opened + self.settings.batch_max_age - time.monotonic()

    def _full(self) -> bool:
        b, s = self._batch, self.settings
        return b.rows >= s.batch_max_records or b.bytes >= s.batch_max_bytes

    async def _commit_queued(self) -> None:
        """Commit the queued batch, after any commit already in flight."""
        async with self._commit_lock:
            if self._batch.units:
                await self._commit(self._take())

    def _take(self) -> Batch:
        batch, self._batch = self._batch, Batch()
        return batch

    async def _commit(self, batch: Batch) -> None:
        self._committing = batch.units
        tables: dict[str, list[bytes]] = {}
        for unit in batch.units:
            for table, rows in unit.rows.items():
                tables.setdefault(table, []).extend(rows)
        for table, rows in tables.items():
            if rows:
                await self._insert(table, rows)
        for unit in batch.units:
            if unit.publish is not None:
                await unit.publish
        deliveries = [d for unit in batch.units for d in unit.deliveries]
        await self._settle(deliveries)
        self._committing = []
        self._committed(batch, len(deliveries), tables)

    async def _settle(self, deliveries: list[Delivery]) -> None:
        started = time.perf_counter()
        await self.transport.settle(deliveries)
        self.metrics.commit_latency.labels(self.transport.name).observe(
            time.perf_counter() - started
        )

    def _committed(self, batch: Batch, messages: int, tables: dict[str, list[bytes]]) -> None:
        self.committed_messages += messages
        self.committed_records += batch.records
        self.committed_activities += len(tables.get("activities", ()))
        self._pending_records -= batch.records
        self.metrics.pending_records.set(self._pending_records)
        self.metrics.last_flush.set(time.time())
        self.metrics.records_committed.inc(batch.records)
        if self._paused and self._pending_records < self.settings.max_pending_records // 2:
            self._set_paused(False)
        log.debug("committed %d messages, %d records", messages, batch.records)

    async def _insert(self, table: str, rows: list[bytes]) -> None:
        """Insert one block, retrying transient failures until it commits.

        The server refusing the data itself (a non-retriable :class:`SinkError`, e.g. code 349)
        would block the partition forever if retried: the block is split in halves until the
        refused rows are isolated, and those are dead-lettered (``publish``) instead. When every
        row of a block of several is refused, the storage is at fault, not the data (a dropped
        table, a permission): the block is retried with backoff, like an outage.
        """
        delay = 0.2
        while True:
            exc = await self._try_insert(table, rows)
            if exc is None:
                return
            refused = await self._isolate(table, rows, exc)
            if len(rows) > 1 and len(refused) == len(rows):
                self.sink_error = f"insert into {table} failing: every row refused: {exc}"
                log.warning(
                    "every row of a block of %d was refused by %s, retrying in %.1fs: %s",
                    len(rows), table, delay, exc,
                )  # fmt: skip
                delay = await _back_off(delay)
                continue
            for row, error in refused:
                await self._dead_letter_row(table, row, error)
            self.sink_error = ""  # refused rows are dead-lettered: nothing is stuck
            return

    async def _try_insert(self, table: str, rows: list[bytes]) -> SinkError | None:
        """Insert ``rows``, retrying transient failures; the refusal if the server refuses."""
        token = _token(table, rows)
        loop = asyncio.get_running_loop()
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._executor, self.sink.insert, table, rows, token)
            except Exception as exc:
                self.metrics.sink_errors.labels(table).inc()
                self.sink_error = f"insert into {table} failing: {exc}"
                if isinstance(exc, SinkError) and not exc.retriable:
                    return exc
                log.warning(
                    "insert of %d rows into %s failed, retrying in %.1fs: %s",
                    len(rows), table, delay, exc,
                )  # fmt: skip
                delay = await _back_off(delay)
                continue
            self.sink_error = ""
            self.metrics.flush_latency.labels(table).observe(time.perf_counter() - started)
            self.metrics.batch_rows.labels(table).observe(len(rows))
            return None

    async def _isolate(
        self, table: str, rows: list[bytes], exc: SinkError
    ) -> list[tuple[bytes, SinkError]]:
        """Store the rows of a refused block that the server takes; the refused ones."""
        if len(rows) == 1:
            return [(rows[0], exc)]
        half = len(rows) // 2
        refused: list[tuple[bytes, SinkError]] = []
        for part in (rows[:half], rows[half:]):
            error = await self._try_insert(table, part)
            if error is not None:
                refused += await self._isolate(table, part, error)
        return refused

    async def _dead_letter_row(self, table: str, row: bytes, exc: SinkError) -> None:
        log.error("%s refused a row, dead-lettering it: %s", table, exc)
        kind = "k8s-event" if table == "k8s_events" else "audit"
        record = dead_letter_record(kind, row, f"insert into {table} refused: {exc}", "publish")
        subject, data, _ = _dlq_item(record)
        msg_id = "dlq-refused-" + hashlib.blake2b(row, digest_size=16).hexdigest()
        await self._publish([(subject, data, msg_id)], 0, [record])

    async def _keepalive(self) -> None:
        """Tell the server that inputs waiting longer than a third of ack_wait are still in
        progress (NATS ``+WPI``; nothing on Kafka)."""
        interval = max(self.settings.ack_wait / 3, 0.5)
        while True:
            await asyncio.sleep(interval)
            old = time.monotonic() - interval
            waiting = [d for u in self._waiting_units() if u.created < old for d in u.deliveries]
            if waiting:
                with contextlib.suppress(Exception):
                    await self.transport.keep_alive(waiting)

    def _waiting_units(self) -> list[Unit]:
        return self._committing + self._batch.units

    # -- shutdown -------------------------------------------------------------------------------
    async def drain(self) -> None:
        """Commit everything received (used at shutdown, after the consumers stopped).

        A batch the flush loop is committing already (its activities may be published while its
        insert still runs) is waited for, so its acks go out too, then whatever is queued is
        committed. The flush loop starts no commit after this.
        """
        self._stopping = True
        self._wake.set()
        await self.flush()

    async def drain_and_stop(self, timeout: float, lost: str) -> None:
        """:meth:`drain` within ``timeout`` seconds (else log an error ending with ``lost``:
        what happens to the input not committed), then :meth:`stop`."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(self.drain(), timeout)
        except TimeoutError:
            log.error("flush did not finish in %.0fs; %s", time.monotonic() - started, lost)
        await self.stop()

    async def flush(self) -> None:
        """Commit and settle everything handed over so far, now (a Kafka partition revoke, and
        :meth:`drain`); the pipeline goes on afterwards."""
        self._cancel_early_timer()
        await self._ack_early()
        await self._commit_queued()

    async def stop(self) -> None:
        """Stop the flush loop and the keepalive task; does not commit (see :meth:`drain`)."""
        self._stopping = True
        self._wake.set()
        self._cancel_early_timer()
        await cancel_tasks(self._tasks)

    def _cancel_early_timer(self) -> None:
        if self._early_timer is not None:
            self._early_timer.cancel()
            self._early_timer = None

    @property
    def pending_records(self) -> int:
        """Records received and not yet acked."""
        return self._pending_records

    def oldest_pending_age(self) -> float:
        """Seconds the oldest received and not yet acknowledged input has waited (0: none)."""
        units = self._waiting_units()
        if not units:
            return 0.0
        return max(0.0, time.monotonic() - min(u.created for u in units))

    # -- metrics --------------------------------------------------------------------------------
    def _count(self, out: Output, source: str, partition: str, messages: int) -> None:
        m = self.metrics
        name = "audit_log" if source == "audit" else "k8s_event"
        m.partition_records.labels(source, partition).inc(out.records)
        m.partition_messages.labels(source, partition).inc(messages)
        for key, n in out.received.items():  # audit events only, as upstream
            group, _, resource = key.partition("/")
            m.events_received.labels(name, group or "core", resource).inc(n)
        for reason, n in out.skip_reasons.items():
            m.events_skipped.labels(name, reason).inc(n)
        if out.no_match:
            m.events_skipped.labels(name, "no_matching_policy").inc(out.no_match)
        if out.errors:
            unmarshal = sum(d.get("errorType") == "unmarshal" for d in out.dead_letters)
            if unmarshal:
                m.events_errored.labels(name, "unmarshal").inc(unmarshal)
            if out.errors > unmarshal:
                m.events_errored.labels(name, "evaluate").inc(out.errors - unmarshal)
        if source != "audit":
            return  # upstream counts audit activities only
        generated: dict[tuple[str, str, str], int] = {}
        for policy, activity in zip(out.policies, out.activities, strict=True):
            labels = (policy, activity.api_group, activity.kind)
            generated[labels] = generated.get(labels, 0) + 1
        for (policy, group, kind), n in generated.items():
            m.activities_generated.labels(policy, group, kind).inc(n)

    def _count_dead_letter(self, record: dict[str, Any]) -> None:
        resource = record.get("resource") or {}
        group = resource.get("apiGroup") if "resource" in record else None
        self.metrics.dlq_published.labels(
            record.get("type", ""),
            "unknown" if group is None else group or "core",
            resource.get("kind") or "unknown",
            record.get("errorType", ""),
            record.get("policyName", ""),
        ).inc()


def _dlq_item(record: dict[str, Any]) -> Item:
    resource = record.get("resource")
    group = resource.get("apiGroup", "") if resource is not None else None
    kind = resource.get("kind", "") if resource is not None else ""
    subject = dlq_subject(record.get("type", "audit"), group, kind)
    return subject, encode_dead_letter(record), None


async def _back_off(delay: float) -> float:
    """Wait ``delay`` seconds; the next delay (doubled, at most :data:`MAX_BACKOFF`)."""
    await asyncio.sleep(delay)
    return min(delay * 2, MAX_BACKOFF)


def _too_large(
    built: Built, policy: str, origin: Origin, size: int, limit: int, source: str
) -> dict[str, Any]:
    """The dead letter of an Activity too large for ACTIVITIES (its input kept, not its text)."""
    buf, start, end = origin
    activity = built.activity()  # rare: the map, decoded once, for the resource's fields
    spec = activity.get("spec") or {}
    resource = spec.get("resource") or {}
    return dead_letter_record(
        "audit" if source == "audit" else "k8s-event",
        buf if start == 0 and end == len(buf) else buf[start:end],
        f"activity {activity['metadata']['name']} of {size} bytes exceeds the {limit} bytes "
        "an ACTIVITIES message can hold",
        TOO_LARGE,
        policy,
        tenant=spec.get("tenant") if source == "audit" else None,
        resource={k: resource.get(k, "") for k in ("apiGroup", "kind", "name", "namespace")},
    )


def _token(table: str, rows: list[bytes]) -> str:
    """A deterministic insert deduplication token for one batch of rows."""
    digest = hashlib.blake2b(table.encode(), digest_size=16)
    for row in rows:
        digest.update(len(row).to_bytes(4, "little"))
        digest.update(row)
    return digest.hexdigest()
