"""Records -> NATS messages, each with a deterministic ``Nats-Msg-Id``.

Audit records of one partition are gathered, in the order of the request, into
``audit.k8s.io/v1`` EventList messages of at most ``batch_items`` records and ``batch_bytes``
bytes (a record larger than ``batch_bytes`` travels alone). The grouping depends on the request
alone, so a retried request (kube-apiserver resends the same batch) produces the same messages;
each message's id is a hash of its subject and bytes, and JetStream drops the copies within the
stream's duplicate window (10 minutes on ``AUDIT_EVENTS``).

Kubernetes Events of one partition are gathered the same way into core ``v1`` EventList messages
on ``events.p<N>`` (the worker splits them: :func:`processor.records.event.is_event_list`); the
caller's ``batch_bytes`` for Events is bounded by the live EVENTS stream's message size
(:func:`processor.ingest.publish.read_limits`). An Event too large for a list of one travels
alone, as upstream's producers send Events. EVENTS drops copies within 1 minute.

With ``--linger-ms`` > 0 (:class:`Linger`, one per source) records of concurrent requests share
messages for up to that long. Ids are then still hashes of the bytes, but a retried request may be
grouped differently, so its records can be stored twice in their stream; downstream that is
invisible: activity names are deterministic (``ACTIVITIES`` drops the second publish) and
ClickHouse collapses rows by origin id.

``--also-publish-shared`` copies each record alone, in upstream's form (:func:`shared_messages`):
an audit record on ``audit.k8s.activity`` with its auditID as id, an Event on
``events.<namespace>`` with its uid (``<uid>-<resourceVersion>`` for a later version) as id.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from processor.deadletter import UNMARSHAL, dead_letter_record, encode_dead_letter
from processor.ingest.body import Parsed, Record, Rejected, Source, event_shared_id, shared_id
from processor.reconciler.events import event_subject
from processor.stream.partitions import audit_partition_subject, event_partition_subject
from processor.subjects import dlq_subject

__all__ = [
    "SHARED_SUBJECT",
    "Linger",
    "Message",
    "audit_list",
    "dead_letter_messages",
    "event_list",
    "message_id",
    "partition_messages",
    "shared_messages",
]

SHARED_SUBJECT = "audit.k8s.activity"
_LIST_HEAD = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
_EVENT_LIST_HEAD = b'{"kind":"EventList","apiVersion":"v1","metadata":{},"items":['
_LIST_TAIL = b"]}"
#: source -> (the subject of a partition, the head of its list messages)
_FORMS: dict[str, tuple[Callable[[int], str], bytes]] = {
    "audit": (audit_partition_subject, _LIST_HEAD),
    "event": (event_partition_subject, _EVENT_LIST_HEAD),
}


@dataclass(slots=True)
class Message:
    """One message to publish.

    Attributes:
        subject, data, msg_id: what is published (``msg_id`` is the ``Nats-Msg-Id``).
        source: ``audit`` or ``event``.
        partition: the metric label: the partition number, ``shared`` or ``dlq``.
        records: how many records it carries.
    """

    subject: str
    data: bytes
    msg_id: str
    source: str
    partition: str
    records: int


def audit_list(items: Sequence[bytes | memoryview]) -> bytes:
    """An ``audit.k8s.io/v1`` EventList of the items' JSON (copied once)."""
    return _list(_LIST_HEAD, items)


def event_list(items: Sequence[bytes | memoryview]) -> bytes:
    """A core ``v1`` EventList of the Events' JSON (copied once)."""
    return _list(_EVENT_LIST_HEAD, items)


def _list(head: bytes, items: Sequence[bytes | memoryview]) -> bytes:
    parts: list[bytes | memoryview] = [b","] * (2 * len(items) + 1)
    parts[0] = head
    parts[1::2] = items
    parts[-1] = _LIST_TAIL
    return b"".join(parts)


def message_id(subject: str, data: bytes) -> str:
    """``ingest-<sha256 of subject and bytes>``: the same message always has the same id."""
    digest = hashlib.sha256(subject.encode())
    digest.update(b"\0")
    digest.update(data)
    return "ingest-" + digest.hexdigest()[:48]


def _chunks(
    records: Sequence[Record], batch_items: int, room: int
) -> list[list[bytes | memoryview]]:
    """The records' JSON in groups of at most ``batch_items`` and ``room`` bytes with commas."""
    out: list[list[bytes | memoryview]] = []
    items: list[bytes | memoryview] = []
    size = 0
    for record in records:
        extra = len(record.data) + (1 if items else 0)
        if items and (len(items) >= batch_items or size + extra > room):
            out.append(items)
            items, size, extra = [], 0, len(record.data)
        items.append(record.data)
        size += extra
    if items:
        out.append(items)
    return out


def partition_messages(parsed: Parsed, batch_items: int, batch_bytes: int) -> list[Message]:
    """The partition messages of a request, in a deterministic order.

    Per partition (in order of first appearance), EventLists of up to ``batch_items`` records and
    ``batch_bytes`` bytes (the caller bounds it by the source's stream): audit records on
    ``audit.k8s.p<N>``, Events on ``events.p<N>`` (an Event too large for a list of one goes
    alone).
    """
    source = parsed.source
    subject_of, head = _FORMS[source]
    room = batch_bytes - len(head) - len(_LIST_TAIL)
    groups: dict[int, list[Record]] = {}
    for record in parsed.records:
        groups.setdefault(record.partition, []).append(record)
    messages = []
    for partition, records in groups.items():
        subject = subject_of(partition)
        for items in _chunks(records, batch_items, room):
            data = _message_data(source, head, items, room)
            messages.append(
                Message(
                    subject, data, message_id(subject, data), source, str(partition), len(items)
                )
            )
    return messages


def _message_data(
    source: str, head: bytes, items: Sequence[bytes | memoryview], room: int
) -> bytes:
    """A list of ``items``, or the Event alone when it is too large for a list of one."""
    if source == "event" and len(items) == 1 and len(items[0]) > room:
        return bytes(items[0])
    return _list(head, items)


def shared_messages(parsed: Parsed) -> list[Message]:
    """Each record alone in upstream's form: an audit record on ``audit.k8s.activity`` with its
    auditID as id (:func:`~processor.ingest.body.shared_id`), an Event on ``events.<namespace>``
    with its uid as id (:func:`~processor.ingest.body.event_shared_id`)."""
    if parsed.source == "event":
        out = []
        for r in parsed.records:
            event = orjson.loads(r.data)
            namespace = (event.get("metadata") or {}).get("namespace")
            subject = event_subject(namespace if type(namespace) is str else "")
            out.append(
                Message(
                    subject, bytes(r.data), event_shared_id(event, r.data), "event", "shared", 1
                )
            )
        return out
    return [
        Message(
            SHARED_SUBJECT,
            bytes(r.data),
            r.shared_id or shared_id(orjson.loads(r.data), r.data),
            "audit",
            "shared",
            1,
        )
        for r in parsed.records
    ]


def dead_letter_messages(parsed: Parsed, body: bytes, limit: int) -> list[Message]:
    """The dead letters of a request's rejected items (those with a payload to keep).

    Each is a worker-format dead letter (``unmarshal``) on
    ``activity.dlq.<audit|k8s-event>.unknown.unknown`` with ``Nats-Msg-Id``
    ``dlq-ingest-<hash of body, item, reason>``: a retried request dead-letters an item once.
    A dead letter larger than ``limit`` (the DLQ's largest message) cannot keep its payload:
    ``originalPayload`` is then null and ``error`` gives the size and digest of what was dropped.
    """
    event_type = "audit" if parsed.source == "audit" else "k8s-event"
    subject = dlq_subject(event_type, None, "")
    body_digest: bytes | None = None
    out = []
    for item in parsed.rejected:
        if item.payload is None:
            continue
        if body_digest is None:
            body_digest = hashlib.sha256(body).digest()
        data = _dead_letter(event_type, item, limit)
        key = hashlib.sha256(body_digest + f"\0{item.index}\0{item.reason}".encode())
        msg_id = "dlq-ingest-" + key.hexdigest()[:48]
        out.append(Message(subject, data, msg_id, parsed.source, "dlq", 1))
    return out


def _dead_letter(event_type: str, item: Rejected, limit: int) -> bytes:
    assert item.payload is not None
    data = encode_dead_letter(dead_letter_record(event_type, item.payload, item.message, UNMARSHAL))
    if len(data) <= limit:
        return data
    digest = hashlib.sha256(item.payload).hexdigest()
    error = (
        f"{item.message} [payload of {len(item.payload)} bytes (sha256 {digest}) too large for "
        "the dead-letter stream: not kept]"
    )
    return encode_dead_letter(dead_letter_record(event_type, b"null", error, UNMARSHAL))


Send = Callable[[list[Message]], Awaitable[Any]]


@dataclass(slots=True, eq=False)
class _Open:
    """A message being gathered for one partition."""

    items: list[bytes | memoryview] = field(default_factory=list)
    size: int = 0
    done: asyncio.Future[None] | None = None
    timer: asyncio.TimerHandle | None = None


class Linger:
    """Records of one source from concurrent requests, gathered per partition for up to
    ``delay`` seconds.

    Messages are the ones :func:`partition_messages` makes (the same subjects, list forms and
    limits); a partition's messages are handed to ``send`` in the order their records arrived.

    Args:
        send: publishes a list of messages and raises when they are not all acknowledged.
        source: ``audit`` or ``event``.
        batch_items, batch_bytes: the limits of one message (a message is sent when full).
        delay: seconds the first record of a message waits for others.
    """

    def __init__(
        self, send: Send, source: Source, batch_items: int, batch_bytes: int, delay: float
    ) -> None:
        self._send = send
        self.source = source
        self._subject_of, self._head = _FORMS[source]
        self.batch_items = batch_items
        self.room = batch_bytes - len(self._head) - len(_LIST_TAIL)
        self.delay = delay
        self._open: dict[int, _Open] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, records: Sequence[Record]) -> list[asyncio.Future[None]]:
        """Queue ``records``; the futures complete when every message holding them is acked."""
        loop = asyncio.get_running_loop()
        waits: dict[int, asyncio.Future[None]] = {}
        for record in records:
            p = record.partition
            batch = self._open.get(p)
            extra = len(record.data) + 1
            if batch is not None and (
                len(batch.items) >= self.batch_items or batch.size + extra > self.room
            ):
                self._flush(p)
                batch = None
            if batch is None:
                batch = _Open(done=loop.create_future())
                batch.timer = loop.call_later(self.delay, self._flush, p, batch)
                self._open[p] = batch
            batch.items.append(record.data)
            batch.size += extra
            assert batch.done is not None
            waits[id(batch.done)] = batch.done
            if len(batch.items) >= self.batch_items or batch.size > self.room:
                self._flush(p)  # full, or one record over the room: it travels alone
        return list(waits.values())

    def _flush(self, partition: int, which: _Open | None = None) -> None:
        batch = self._open.get(partition)
        if batch is None or (which is not None and batch is not which):
            return
        del self._open[partition]
        if batch.timer is not None:
            batch.timer.cancel()
        subject = self._subject_of(partition)
        data = _message_data(self.source, self._head, batch.items, self.room)
        message = Message(
            subject, data, message_id(subject, data), self.source, str(partition), len(batch.items)
        )
        assert batch.done is not None
        task = asyncio.ensure_future(self._deliver(message, batch.done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, message: Message, done: asyncio.Future[None]) -> None:
        try:
            await self._send([message])
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
                done.add_done_callback(lambda f: f.exception())  # retrieved even if unawaited
        else:
            if not done.done():
                done.set_result(None)

    async def close(self) -> None:
        """Send what is gathered and wait for every send in flight."""
        for partition in list(self._open):
            self._flush(partition)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
