"""Keys and partitions of the input records on Kafka: the NATS partition function, unchanged.

A record's key is the partition function's input (``apiGroup/resource/namespace/name`` of an audit
event's ``objectRef``, ``apiVersion/kind/namespace/name`` of an Event's involved object) and its
partition is :func:`processor.subjects.partition_of` of it: the same CRC-32 modulo the partition
count as on NATS, so the records of one object meet in one partition whichever transport or
producer carried them. Producers publish with this explicit partition (Kafka's default
partitioner hashes with murmur2 and would place keys elsewhere).
"""

from __future__ import annotations

from typing import Any

from processor.subjects import audit_partition_key, event_partition_key, partition_of

__all__ = ["route"]


def route(record: Any, source: str, partitions: int) -> tuple[bytes, int]:
    """``(key, partition)`` of ``record`` (``source``: ``audit`` or ``event``).

    Raises:
        ValueError: ``partitions`` is less than 1.
    """
    parts = audit_partition_key(record) if source == "audit" else event_partition_key(record)
    key = "/".join(parts).encode("utf-8", "surrogatepass")
    return key, partition_of(*parts, partitions)
