"""Messages for load runs, cut from the standard benchmark corpus (``processor.bench.corpus``).

The corpus is generated once per Locust process and serialised once; every record is bucketed by
its input partition (``processor.subjects.partition_of``, as the demo and the benchmarks publish).
Each publish gives every record a fresh identity (the audit ``auditID`` or the Event's
``metadata.uid``, replaced in the serialised bytes), so re-publishing the corpus in a loop yields
new activities: ``ACTIVITIES`` (``Nats-Msg-Id``) and ClickHouse would drop repeats otherwise.

Message kinds, and the name of their Locust stats entry:

* ``audit p<N>``: one audit event on ``audit.k8s.p<N>``;
* ``list p<N>``: an audit ``EventList`` of ``list_size`` events on ``audit.k8s.p<N>``;
* ``event p<N>``: one Kubernetes Event on ``events.p<N>`` (Events are never batched).

For ``activity ingest`` (:meth:`Feed.batch`): an audit ``EventList`` body of audit records of
every chosen partition in corpus order, as kube-apiserver's webhook posts them; the ingest routes
each record to its partition.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from processor.bench.corpus import generate
from processor.subjects import partition_of

LIST_HEAD = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
LIST_TAIL = b"]}"


@dataclass(frozen=True, slots=True)
class Record:
    """One serialised corpus record and the identity token to replace on each publish."""

    payload: bytes
    identity: bytes
    audit: bool


@dataclass(slots=True)
class Message:
    """One message to publish.

    Attributes:
        subject: the NATS subject.
        payload: the bytes.
        partition: the input partition.
        name: the Locust stats entry (``audit p3``, ``list p3``, ``event p3``).
        ids: the origin ids of the records in it (``spec.origin.id`` of their activities).
    """

    subject: str
    payload: bytes
    partition: int
    name: str
    ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Batch:
    """An audit ``EventList`` body for the ingest's ``/audit``.

    Attributes:
        body: the bytes to post.
        ids: the origin ids of its records, in order.
        partitions: the input partition of each record, in the same order.
    """

    body: bytes
    ids: list[str]
    partitions: list[int]


def record_partition(record: dict[str, Any], count: int) -> int:
    """The input partition of a corpus record (audit event or Kubernetes Event)."""
    ref = record.get("objectRef")
    if ref is not None:
        keys = (ref.get("apiGroup", ""), ref.get("resource", ""))
    else:
        ref = record.get("regarding") or record.get("involvedObject") or {}
        keys = (ref.get("apiVersion", ""), ref.get("kind", ""))
    return partition_of(*keys, ref.get("namespace", ""), ref.get("name", ""), count)


class Feed:
    """Round-robin messages over the chosen partitions, from a seeded corpus.

    Args:
        partitions: the partitions to publish to (records of other partitions are not used).
        partition_count: the number of partitions the workers are configured with.
        corpus_size: records generated (``generate(corpus_size, seed)``).
        seed: the corpus seed.
        list_size: audit events per ``EventList`` message.
    """

    def __init__(
        self,
        partitions: list[int],
        partition_count: int,
        corpus_size: int = 2000,
        seed: int = 1,
        list_size: int = 100,
    ) -> None:
        if not partitions:
            raise ValueError("no partition to publish to")
        if list_size < 1:
            raise ValueError("list_size must be at least 1")
        self.list_size = list_size
        wanted = set(partitions)
        self.audit: dict[int, list[Record]] = {p: [] for p in partitions}
        self.every: dict[int, list[Record]] = {p: [] for p in partitions}
        in_order: list[tuple[int, Record]] = []
        for raw in generate(corpus_size, seed):
            part = record_partition(raw, partition_count)
            if part not in wanted:
                continue
            record = _record(raw)
            self.every[part].append(record)
            if record.audit:
                self.audit[part].append(record)
                in_order.append((part, record))
        empty = [p for p in partitions if not self.audit[p]]
        if empty:
            raise ValueError(
                f"the corpus of {corpus_size} records has no audit event for partitions "
                f"{empty}: raise the corpus size"
            )
        self._parts = itertools.cycle(partitions)
        self._single = {p: itertools.cycle(self.every[p]) for p in partitions}
        self._lists = {p: itertools.cycle(self.audit[p]) for p in partitions}
        self._mixed = itertools.cycle(in_order)

    def single(self, partition: int | None = None) -> Message:
        """The next single-record message (audit event or Event) of a partition."""
        part = next(self._parts) if partition is None else partition
        record = next(self._single[part])
        payload, origin = _fresh(record)
        if record.audit:
            return Message(f"audit.k8s.p{part}", payload, part, f"audit p{part}", [origin])
        return Message(f"events.p{part}", payload, part, f"event p{part}", [origin])

    def event_list(self, partition: int | None = None) -> Message:
        """The next ``EventList`` of ``list_size`` audit events of a partition."""
        part = next(self._parts) if partition is None else partition
        source = self._lists[part]
        items, ids = [], []
        for _ in range(self.list_size):
            payload, origin = _fresh(next(source))
            items.append(payload)
            ids.append(origin)
        body = LIST_HEAD + b",".join(items) + LIST_TAIL
        return Message(f"audit.k8s.p{part}", body, part, f"list p{part}", ids)

    def batch(self, size: int) -> Batch:
        """The next ``size`` audit records of all chosen partitions, in corpus order, as one
        ``EventList`` body (what the ingest's ``/audit`` takes)."""
        items, ids, parts = [], [], []
        for _ in range(size):
            part, record = next(self._mixed)
            payload, origin = _fresh(record)
            items.append(payload)
            ids.append(origin)
            parts.append(part)
        return Batch(LIST_HEAD + b",".join(items) + LIST_TAIL, ids, parts)

    def sizes(self) -> dict[int, int]:
        """Records per chosen partition in the corpus."""
        return {p: len(records) for p, records in self.every.items()}


def _record(raw: dict[str, Any]) -> Record:
    audit = "auditID" in raw
    identity = raw["auditID"] if audit else (raw.get("metadata") or {}).get("uid")
    if not identity:
        raise ValueError("a corpus record without auditID or metadata.uid")
    return Record(orjson.dumps(raw), f'"{identity}"'.encode(), audit)


def _fresh(record: Record) -> tuple[bytes, str]:
    origin = str(uuid.uuid4())
    return record.payload.replace(record.identity, f'"{origin}"'.encode(), 1), origin


def parse_partitions(spec: str, count: int) -> list[int]:
    """``all``, ``0-3`` or ``0,2,5-7`` as a sorted list (the worker's ``--partitions`` syntax)."""
    from processor.stream.partitions import parse_partitions as parse

    return list(parse(spec, count))
