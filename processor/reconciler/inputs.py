"""Decoding the reconciler's inputs: audit messages (single events or lists), controller Events."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from processor.reconciler.conditions import INVENTORY_GROUP, RESOURCES
from processor.reconciler.events import DERIVED_BY, transition_key

__all__ = ["audit_records", "controller_event_identity"]

_GROUP_BYTES = INVENTORY_GROUP.encode()


def audit_records(data: bytes, on_error: Callable[[Exception], None]) -> Iterator[Any]:
    """The audit events of one message that may concern inventory objects.

    A message without the bytes ``inventory.miloapis.com`` is skipped undecoded (most of the
    audit stream); an ``audit.k8s.io/v1 EventList`` yields its items (docs/design.md#d12).

    Args:
        data: the message payload.
        on_error: called with the error when the payload is not JSON (it is then skipped).
    """
    if _GROUP_BYTES not in data:
        return
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        on_error(exc)
        return
    if type(obj) is dict and obj.get("kind") == "EventList":
        items = obj.get("items")
        yield from items if type(items) is list else ()
    else:
        yield obj


def controller_event_identity(event: Any) -> tuple[str, str, str] | None:
    """``(kind, name, time)`` of an inventory Event a controller emitted, else None.

    None for Events without the ``inventory.miloapis.com/event-type`` annotation, for the
    reconciler's own (``activity.miloapis.com/derived-by``) and for non-inventory objects.
    """
    if type(event) is not dict:
        return None
    meta = event.get("metadata")
    annotations = meta.get("annotations") if type(meta) is dict else None
    if type(annotations) is not dict or DERIVED_BY in annotations:
        return None
    regarding = event.get("regarding") or event.get("involvedObject")
    if type(regarding) is not dict:
        return None
    api_version = regarding.get("apiVersion")
    kind, name = regarding.get("kind"), regarding.get("name")
    if type(api_version) is not str or api_version.rpartition("/")[0] != INVENTORY_GROUP:
        return None
    if kind not in RESOURCES or type(name) is not str or not name:
        return None
    when = event.get("eventTime") or (meta or {}).get("creationTimestamp") or ""
    etype, _ = transition_key(event)
    return (kind, name, when) if etype and type(when) is str else None
