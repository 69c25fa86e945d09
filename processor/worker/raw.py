"""Raw record storage (``--store-raw``): the rows the upstream Vector aggregator used to write.

Audit messages become one ``audit_logs`` row per audit Event (EventLists are split), keeping only
the configured stages as Vector kept only ``ResponseComplete``. Kubernetes Events become
``k8s_events`` rows, one per Event: a list of Events (:func:`processor.records.event.is_event_list`)
gives each item's text as sent, the row it would give alone; an Event with no timestamp at all gets
``eventTime`` = now, because the table's materialised timestamp columns would be NULL and the whole
insert would fail (``docs/design.md#storage-query-1-3``).
Payloads that are not JSON objects are skipped here: the translator dead-letters them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from processor.records.event import is_event_list
from processor.records.spans import list_item_spans
from processor.transport import Message as Delivery

_EVENT_TIMES = (
    "eventTime",
    "deprecatedFirstTimestamp",
    "deprecatedLastTimestamp",
    "firstTimestamp",
    "lastTimestamp",
)


def raw_rows(
    deliveries: Iterable[Delivery], source: str, stages: Sequence[str]
) -> tuple[str, list[bytes]]:
    """The table and the rows to store for ``deliveries`` of ``source`` (``audit``/``event``)."""
    if source == "event":
        return "k8s_events", [row for d in deliveries for row in _event_rows(d.data)]
    wanted = set(stages)
    return "audit_logs", [row for d in deliveries for row in _audit_rows(d.data, wanted)]


def _load(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _audit_rows(data: bytes, stages: set[str]) -> list[bytes]:
    obj = _load(data)
    if type(obj) is not dict:
        return []
    items = obj.get("items") if obj.get("kind") == "EventList" else [obj]
    if type(items) is not list:
        return []
    return [
        orjson.dumps(item)
        for item in items
        if type(item) is dict and (not stages or item.get("stage") in stages)
    ]


def _event_rows(data: bytes) -> list[bytes]:
    obj = _load(data)
    if type(obj) is not dict:
        return []
    if is_event_list(obj):
        items = obj.get("items")
        if type(items) is not list:
            return []
        spans = list_item_spans(data)
        if spans is None or len(spans) != len(items):
            return []
        return [
            row
            for item, (start, end) in zip(items, spans, strict=True)
            if type(item) is dict
            for row in _event_row(item, data[start:end])
        ]
    return _event_row(obj, data)


def _event_row(obj: dict[str, Any], data: bytes) -> list[bytes]:
    """The row of one Event (``obj``, decoded from ``data``)."""
    if not _has_time(obj):
        obj["eventTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return [orjson.dumps(obj)]
    return [data]


def _has_time(obj: dict[str, Any]) -> bool:
    if any(obj.get(key) for key in _EVENT_TIMES):
        return True
    series = obj.get("series")
    if type(series) is dict and series.get("lastObservedTime"):
        return True
    meta = obj.get("metadata")
    return type(meta) is dict and bool(meta.get("creationTimestamp"))
