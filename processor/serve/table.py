"""Server-side ``Table`` output (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``):
what ``kubectl get`` prints, columns chosen by the server.

Activities have upstream's columns: Name, Summary (over 60 characters cut to 57 + ``...``),
Actor, Resource (``Kind/name``), Source, Age. Events have kubectl's: Last Seen, Type, Reason,
Object, Message. Each row carries the object's metadata (``PartialObjectMetadata``), so kubectl
can add the NAMESPACE column with ``-A``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from processor.query.errors import TimeRangeError
from processor.query.timeparse import NS, parse_rfc3339

SUMMARY_WIDTH = 60


def _get(doc: Mapping[str, Any], *path: str) -> str:
    value: Any = doc
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def human_duration(seconds: int) -> str:
    """Kubernetes' ``duration.HumanDuration``: ``45s``, ``5m10s``, ``3h5m``, ``2d3h``, ``400d``."""
    if seconds < 0:
        return "<invalid>"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24
        rest = days % 365
        return f"{days // 365}y{rest}d" if rest else f"{days // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: str, now_ns: int) -> str:
    """The age of an RFC3339 time (``<unknown>`` when missing or unparsable)."""
    try:
        then = parse_rfc3339(timestamp)
    except TimeRangeError:
        return "<unknown>"
    return human_duration(max(0, (now_ns - then) // NS))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


Cell = Callable[[Mapping[str, Any], int], Any]
ColumnSpec = tuple[str, str, str, str, Cell]  # name, type, format, description, cell


def _activity_resource(doc: Mapping[str, Any], now: int) -> str:
    return f"{_get(doc, 'spec', 'resource', 'kind')}/{_get(doc, 'spec', 'resource', 'name')}"


ACTIVITY_COLUMNS: list[ColumnSpec] = [
    ("Name", "string", "name", "The activity's name", lambda d, n: _get(d, "metadata", "name")),
    ("Summary", "string", "", "What happened",
     lambda d, n: _cut(_get(d, "spec", "summary"), SUMMARY_WIDTH)),
    ("Actor", "string", "", "Who did it", lambda d, n: _get(d, "spec", "actor", "name")),
    ("Resource", "string", "", "Kind/name of the resource", _activity_resource),
    ("Source", "string", "", "human or system", lambda d, n: _get(d, "spec", "changeSource")),
    ("Age", "string", "", "Time since the activity",
     lambda d, n: age(_get(d, "metadata", "creationTimestamp"), n)),
]  # fmt: skip


def event_time(doc: Mapping[str, Any]) -> str:
    """The last time an Event was seen (either API version's fields)."""
    for path in (
        ("series", "lastObservedTime"),
        ("deprecatedLastTimestamp",),
        ("lastTimestamp",),
        ("eventTime",),
        ("metadata", "creationTimestamp"),
    ):
        value = _get(doc, *path)
        if value:
            return value
    return ""


def _event_object(doc: Mapping[str, Any], now: int) -> str:
    ref = "regarding" if isinstance(doc.get("regarding"), Mapping) else "involvedObject"
    return f"{_get(doc, ref, 'kind').lower()}/{_get(doc, ref, 'name')}"


EVENT_COLUMNS: list[ColumnSpec] = [
    ("Last Seen", "string", "", "Time since the Event was last seen",
     lambda d, n: age(event_time(d), n)),
    ("Type", "string", "", "Normal or Warning", lambda d, n: _get(d, "type")),
    ("Reason", "string", "", "Why", lambda d, n: _get(d, "reason")),
    ("Object", "string", "", "The object the Event is about", _event_object),
    ("Message", "string", "", "The Event's text",
     lambda d, n: _get(d, "note") or _get(d, "message")),
]  # fmt: skip


def partial_metadata(doc: Mapping[str, Any], api_version: str) -> dict[str, Any]:
    """The ``PartialObjectMetadata`` of a row."""
    meta = doc.get("metadata")
    keep = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    metadata = {k: meta[k] for k in keep if isinstance(meta, Mapping) and k in meta}
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    }


def to_table(
    columns: Sequence[ColumnSpec],
    items: Sequence[Mapping[str, Any]],
    api_version: str,
    *,
    list_meta: Mapping[str, Any] | None = None,
    headers: bool = True,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``items`` (``headers`` False: rows only, as a watch sends
    after its first event)."""
    now = time.time_ns() if now_ns is None else now_ns
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": dict(list_meta or {}),
        "columnDefinitions": [
            {"name": name, "type": kind, "format": fmt, "description": text, "priority": 0}
            for name, kind, fmt, text, _ in columns
        ]
        if headers
        else [],
        "rows": [
            {
                "cells": [cell(item, now) for *_, cell in columns],
                "object": partial_metadata(item, api_version),
            }
            for item in items
        ],
    }
    return table


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a ``meta.k8s.io`` Table (v1 or v1beta1)."""
    for part in accept.split(","):
        params = {
            k.strip(): v.strip() for k, _, v in (p.partition("=") for p in part.split(";")[1:])
        }
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False
