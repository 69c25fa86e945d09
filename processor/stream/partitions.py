"""Input partitions (docs/design.md#d13): which partitions a worker owns, and their subjects.

A record's partition is ``processor.subjects.partition_of`` (CRC-32 of ``g/r/ns/name`` modulo the
count). Partitioned input is published on ``audit.k8s.p<N>`` / ``events.p<N>``; each owned
partition is read by its own durable consumer, so per-object order holds within a partition.
The upstream subjects (``audit.k8s.activity``, ``events.<namespace>``) are read by a shared
consumer and are never partition subjects.
"""

from __future__ import annotations

import re

__all__ = [
    "audit_partition_subject",
    "event_partition_subject",
    "is_partition_subject",
    "parse_partitions",
]

AUDIT_PARTITION_PREFIX = "audit.k8s.p"
EVENT_PARTITION_PREFIX = "events.p"
_PARTITION_SUBJECT = re.compile(r"(?:audit\.k8s|events)\.p[0-9]+")


def parse_partitions(spec: str, count: int) -> tuple[int, ...]:
    """The partitions named by ``spec``, sorted and without duplicates.

    Args:
        spec: ``all``, or a comma-separated list of numbers and inclusive ranges
            (``0-3``, ``0,2,5-7``); whitespace around items is ignored.
        count: the partition count (partitions are ``0 .. count-1``).

    Raises:
        ValueError: ``count`` < 1, an empty or malformed item, a reversed range, or a
            partition outside ``0 .. count-1`` (the message names the item).
    """
    if count < 1:
        raise ValueError(f"partition count must be >= 1, got {count}")
    text = spec.strip()
    if text.lower() == "all":
        return tuple(range(count))
    if not text:
        raise ValueError("partitions: empty specification (use 'all', '0-3' or '0,2,5-7')")
    chosen: set[int] = set()
    for raw in text.split(","):
        chosen.update(_parse_item(raw.strip(), spec, count))
    return tuple(sorted(chosen))


def _parse_item(item: str, spec: str, count: int) -> range:
    match = re.fullmatch(r"([0-9]+)(?:\s*-\s*([0-9]+))?", item)
    if not match:
        raise ValueError(
            f"partitions {spec!r}: {item!r} is not a number or a range like 2-5 "
            "(use 'all', '0-3' or '0,2,5-7')"
        )
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) is not None else low
    if high < low:
        raise ValueError(f"partitions {spec!r}: range {item!r} is reversed")
    if high >= count:
        raise ValueError(
            f"partitions {spec!r}: {high} is out of range, the partition count is {count} "
            f"(partitions 0-{count - 1})"
        )
    return range(low, high + 1)


def audit_partition_subject(n: int) -> str:
    """``audit.k8s.p<n>``: the audit input subject of partition ``n``."""
    return f"{AUDIT_PARTITION_PREFIX}{n}"


def event_partition_subject(n: int) -> str:
    """``events.p<n>``: the Kubernetes Event input subject of partition ``n``."""
    return f"{EVENT_PARTITION_PREFIX}{n}"


def is_partition_subject(subject: str) -> bool:
    """Whether ``subject`` is ``audit.k8s.p<digits>`` or ``events.p<digits>``.

    ``events.p1`` is also what an Event in a namespace called ``p1`` would get on the upstream
    subject ``events.<namespace>``; such namespaces cannot share a stream with partitioned input.
    """
    return _PARTITION_SUBJECT.fullmatch(subject) is not None
