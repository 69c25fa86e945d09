"""NATS subjects: activity output, dead-letter, input partitions.

Design: ``docs/design.md#pipeline-8-3`` and ``#d5`` (activity output), ``#pipeline-8-5``
(dead-letter), ``#d13`` (input partitions).

Activity subject:
``<prefix>.<tenantType>.<tenantName>.<apiGroup>.<origin>.<kind>.<namespace>.<name>``
with upstream's defaults for empty tokens (``platform``, ``_``, ``core``, ``_``). Every token is
sanitised (docs/design.md#d5): ``.``, ``*``, ``>``, whitespace and control characters become ``_``,
so ``networking.datumapis.com`` is the single token ``networking_datumapis_com`` (as the upstream
docs and Watch API filters have it).

Dead-letter subject: ``<prefix>.<eventType>.<apiGroup>.<kind>``, ``unknown``/``core`` defaults.
The API group keeps its dots as upstream publishes them
(``activity.dlq.k8s-event.networking.k8s.io.Foo``) as long as that yields valid tokens; ``*``,
``>`` and whitespace are replaced, and a group that would give an empty token (``a..b``, ``.x``)
has its dots replaced as well.

Partitions: ``crc32(apiGroup/resource/namespace/name) % count`` (zlib's CRC-32, the same on every
process, platform and Python version; unlike ``hash()`` it is not salted). Every producer
(``activity ingest``, the demo, the benchmarks) routes a record with :func:`audit_partition` or
:func:`event_partition`, so records of one object meet in one partition whoever published them.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from processor.activity import Built

__all__ = [
    "activity_subject",
    "audit_partition",
    "audit_partition_key",
    "dlq_subject",
    "event_partition",
    "event_partition_key",
    "partition_of",
    "sanitize_token",
]

_BAD = {c: "_" for c in range(0x21)}
_BAD.update({0x7F: "_", ord("."): "_", ord("*"): "_", ord(">"): "_"})
_BAD.update({c: "_" for c in (0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)})
_BAD.update({c: "_" for c in range(0x2000, 0x200B)})
_KEEP_DOTS = dict(_BAD)
del _KEEP_DOTS[ord(".")]

_CACHE: dict[tuple[str, str], str] = {}
_CACHE_MAX = 8192


#: A character :data:`_BAD` replaces (the regular expression finds one faster than
#: ``str.translate`` copies a token that has none, as an Activity name never has).
_UNSAFE = re.compile("[" + re.escape("".join(map(chr, _BAD))) + "]")


def sanitize_token(value: str, default: str) -> str:
    """One subject token: ``default`` when empty, else ``.``/``*``/``>``/whitespace -> ``_``."""
    if not value:
        return default
    key = (value, default)
    token = _CACHE.get(key)
    if token is None:
        token = value.translate(_BAD) if _UNSAFE.search(value) else value
        if len(_CACHE) < _CACHE_MAX:
            _CACHE[key] = token
    return token


def activity_subject(activity: Built | dict[str, Any], prefix: str = "activities") -> str:
    """The subject an Activity is published on (docs/design.md#pipeline-8-3; tokens per #d5):
    of a :class:`~processor.activity.Built` from its fields, of an Activity map from its own.

    A Built's name (``act-`` and hex digits, :func:`processor.activity.activity_name`) is a
    token as it is; every other token is sanitised (:func:`sanitize_token`)."""
    if type(activity) is Built:
        a = activity
        head = _head(prefix, a.tenant_type, a.tenant_name, a.api_group, a.origin_type, a.kind)
        return f"{head}.{sanitize_token(a.namespace, '_')}.{a.name}"
    spec = activity["spec"]
    tenant = spec.get("tenant") or {}
    resource = spec.get("resource") or {}
    origin = spec.get("origin") or {}
    head = _head(
        prefix,
        tenant.get("type", ""),
        tenant.get("name", ""),
        resource.get("apiGroup", ""),
        origin.get("type", ""),
        resource.get("kind", ""),
    )
    namespace = sanitize_token(resource.get("namespace", ""), "_")
    return f"{head}.{namespace}.{sanitize_token(activity['metadata']['name'], '_')}"


_HEADS: dict[tuple[str, str, str, str, str, str], str] = {}


def _head(
    prefix: str, tenant_type: str, tenant_name: str, api_group: str, origin_type: str, kind: str
) -> str:
    """``<prefix>.<tenantType>.<tenantName>.<apiGroup>.<origin>.<kind>``, remembered (few
    tenants and policies make many activities)."""
    key = (prefix, tenant_type, tenant_name, api_group, origin_type, kind)
    head = _HEADS.get(key)
    if head is None:
        head = ".".join(
            (
                prefix,
                sanitize_token(tenant_type, "platform"),
                sanitize_token(tenant_name, "_"),
                sanitize_token(api_group, "core"),
                sanitize_token(origin_type, "_"),
                sanitize_token(kind, "_"),
            )
        )
        if len(_HEADS) < _CACHE_MAX:
            _HEADS[key] = head
    return head


def _dlq_group(api_group: str | None) -> str:
    if api_group is None:
        return "unknown"
    if not api_group:
        return "core"
    group = api_group.translate(_KEEP_DOTS)
    if "" in group.split("."):
        group = group.replace(".", "_")
    return group


def dlq_subject(
    event_type: str, api_group: str | None, kind: str, prefix: str = "activity.dlq"
) -> str:
    """The dead-letter subject (docs/design.md#pipeline-8-5):
    ``<prefix>.<eventType>.<apiGroup>.<kind>``.

    Args:
        event_type: ``audit`` or ``k8s-event``.
        api_group: the resource's group; ``""`` is ``core``, None (no resource) is ``unknown``.
        kind: the Kind; ``""`` is ``unknown``.
        prefix: the DLQ subject prefix.
    """
    return ".".join(
        (
            prefix,
            sanitize_token(event_type, "unknown"),
            _dlq_group(api_group),
            sanitize_token(kind, "unknown"),
        )
    )


def partition_of(api_group: str, resource: str, namespace: str, name: str, count: int) -> int:
    """The input partition of an object (docs/design.md#d13): CRC-32 of ``g/r/ns/name`` modulo
    ``count``.

    Raises:
        ValueError: ``count`` is less than 1.
    """
    if count < 1:
        raise ValueError(f"partition count must be >= 1, got {count}")
    if count == 1:
        return 0
    key = f"{api_group}/{resource}/{namespace}/{name}".encode("utf-8", "surrogatepass")
    return zlib.crc32(key) % count


PartitionKey = tuple[str, str, str, str]


def _strings(obj: Any, fields: tuple[str, str, str, str]) -> PartitionKey:
    if type(obj) is not dict:
        return ("", "", "", "")
    values = [obj.get(f) for f in fields]
    a, b, c, d = (v if type(v) is str else "" for v in values)
    return a, b, c, d


_REF_FIELDS = ("apiGroup", "resource", "namespace", "name")
_INVOLVED_FIELDS = ("apiVersion", "kind", "namespace", "name")


def audit_partition_key(record: Any) -> PartitionKey:
    """``(apiGroup, resource, namespace, name)`` of an audit event's ``objectRef``.

    A missing ``objectRef`` (a non-resource request such as ``/healthz``), a missing field or a
    value that is not a string reads ``""``: such records share the partition of the empty key.
    """
    return _strings(record.get("objectRef") if type(record) is dict else None, _REF_FIELDS)


def event_partition_key(event: Any) -> PartitionKey:
    """``(apiVersion, kind, namespace, name)`` of a Kubernetes Event's involved object:
    ``regarding`` (events.k8s.io/v1), else ``involvedObject`` (core/v1); ``""`` where missing."""
    if type(event) is not dict:
        return ("", "", "", "")
    involved = event.get("regarding") or event.get("involvedObject")
    return _strings(involved, _INVOLVED_FIELDS)


def audit_partition(record: Any, count: int) -> int:
    """The input partition of an audit event (:func:`audit_partition_key`, :func:`partition_of`)."""
    return partition_of(*audit_partition_key(record), count)


def event_partition(event: Any, count: int) -> int:
    """The input partition of a Kubernetes Event (:func:`event_partition_key`,
    :func:`partition_of`)."""
    return partition_of(*event_partition_key(event), count)
