"""Request bodies: validate, split into records, route each to its partition.

``/audit`` takes an ``audit.k8s.io`` ``EventList`` (kube-apiserver's webhook, batch or blocking
mode) or a single audit ``Event``; ``/events`` a Kubernetes Event (``events.k8s.io/v1`` or core
``v1``) or a list of them (``kind: EventList`` or ``List`` with ``items``), recognised as the
translate step recognises records (:func:`processor.records.event.classify_record`).

A body that is none of these is refused whole (:class:`BodyError`, HTTP 400) and nothing is
published. Inside a list each item is judged alone, as the worker judges it on its stream:

- an audit item that is not an object (``null`` included) is dead-lettered, with the worker's
  text (``EventList item 3 is a number, not an object``), since the worker would dead-letter it;
- an Event item that is ``null`` is dropped (the worker skips null Events) and any other
  non-object is dead-lettered (``unmarshal``);
- an item too large for one message of its stream is dead-lettered (``record of N bytes
  exceeds the limit of M bytes``, the worker's text for oversize records);
- every object is published: whether it makes an activity is the worker's decision (a record
  with no ``objectRef`` or no involved object is skipped there, not here).

Two paths give the same records, partitions and rejections:

- the fast path (lists, with the native extensions): one pass in C
  (:mod:`processor.ingest.split`, ``_native/ingestsplit.pyx``) validates the body and returns
  each item's span and partition; nothing is decoded but the top-level ``kind`` and
  ``apiVersion``, and each record is published as the sender wrote it (its span in the body);
- the exact path (single records, every body the pass doubts, and the Python path): the body is
  decoded whole with orjson and each record re-encoded compactly (same values, same key order).

So a record's bytes, and the message ids made from them, are a function of the request's bytes:
a retried request makes the same messages. A dead letter keeps the item's original bytes (its
span in the body) on both paths.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import orjson

from processor.errors import ProcessorError
from processor.ingest.split import TYPES, UNDECIDED, Split
from processor.native import extension
from processor.records._json import a_json_type, json_type
from processor.records.event import classify_record
from processor.records.spans import ListSpans
from processor.subjects import audit_partition, event_partition

__all__ = [
    "BodyError",
    "Parsed",
    "Record",
    "Rejected",
    "Source",
    "event_shared_id",
    "parse_body",
    "parse_exact",
    "parse_split",
    "shared_id",
    "splitter",
]

Source = Literal["audit", "event"]

#: Bytes an EventList adds around its items (with room to spare).
LIST_OVERHEAD = 128


class BodyError(ProcessorError, ValueError):
    """The body is not what the endpoint takes; nothing of it is published.

    Attributes:
        status: the HTTP status to answer (400, or 413 for a single record too large to publish).
        reason: the metric label of the rejection.
    """

    retriable = False

    def __init__(self, message: str, status: int = 400, reason: str = "malformed") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class Record:
    """One record to publish.

    Attributes:
        data: its JSON: on the fast path its text as sent (a view of the body, not a copy), on
            the exact path compact.
        partition: its input partition.
        shared_id: the ``Nats-Msg-Id`` on ``audit.k8s.activity`` (audit records of the exact
            path; "" when not computed yet, see :func:`shared_id`).
    """

    data: bytes | memoryview
    partition: int
    shared_id: str = ""


@dataclass(slots=True)
class Rejected:
    """An item that is not published on a partition.

    Attributes:
        index: its position in the list.
        reason: the metric label (``not_object``, ``null``, ``too_large``).
        message: why, in words (the dead letter's ``error``).
        payload: the item's original bytes when it is dead-lettered; None when it is only dropped.
    """

    index: int
    reason: str
    message: str
    payload: bytes | None = None


@dataclass(slots=True)
class Parsed:
    """A validated body: the records to publish and the items rejected."""

    source: Source
    records: list[Record] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def splitter() -> ModuleType | None:
    """The native list splitter (``processor._native.ingestsplit``, loaded with the other
    extensions by :mod:`processor.native`), None on the Python path (the exact path is faster
    there than the twin)."""
    return extension("ingestsplit")


def parse_body(source: Source, body: bytes, partitions: int, record_limit: int) -> Parsed:
    """Validate ``body`` of an ``/audit`` (``source="audit"``) or ``/events`` request.

    Lists go through the fast path when the native splitter is available and sure of the body
    (:func:`parse_split`), everything else through :func:`parse_exact`; both give the same
    partitions, rejections and dead letters, and the same records up to the sender's whitespace.

    Args:
        source: which endpoint received it.
        body: the request body.
        partitions: the partition count.
        record_limit: the largest record a message of the source's stream can carry.

    Raises:
        BodyError: the body is refused whole (invalid JSON, the wrong kind of object, items that
            are not a list, or a single record larger than ``record_limit``).
    """
    module = splitter()
    if module is not None:
        found = module.split_list(body, source == "audit", partitions)
        parsed = parse_split(source, body, found, partitions, record_limit)
        if parsed is not None:
            return parsed
    return parse_exact(source, body, partitions, record_limit)


def parse_split(
    source: Source, body: bytes, found: Split | None, partitions: int, limit: int
) -> Parsed | None:
    """:func:`parse_body` of a list from the splitter's result ``found``
    (:func:`processor.ingest.split.split_list` or its native twin).

    None when it is not a list this path takes: the exact path then decides (single records,
    bodies the splitter doubts, repeated top-level keys, and every refusal with its reason).
    """
    if found is None:
        return None
    members, items = found
    if items is None or len({key for key, _, _ in members}) != len(members):
        return None
    head: dict[str, Any] = {}
    for key, start, end in members:
        head[key] = orjson.loads(body[start:end]) if key in ("kind", "apiVersion") else None
    kind = classify_record(head)
    if source == "audit":
        if kind != "audit_list":
            return None
    elif kind is not None or head.get("kind") not in ("EventList", "List"):
        return None
    route = audit_partition if source == "audit" else event_partition
    parsed = Parsed(source)
    records = parsed.records
    view = memoryview(body)
    for i, (start, end, code) in enumerate(items):
        if code < UNDECIDED:
            _non_object(parsed, i, TYPES[code], body[start:end])
        elif end - start > limit:
            parsed.rejected.append(_too_large(i, end - start, limit, body[start:end]))
        else:
            if code == UNDECIDED:  # a key to unescape: decode this item
                code = route(orjson.loads(view[start:end]), partitions)
            records.append(Record(view[start:end], code))
    return parsed


def parse_exact(source: Source, body: bytes, partitions: int, record_limit: int) -> Parsed:
    """:func:`parse_body` by decoding the body whole with orjson (the specification)."""
    if not body.strip():
        raise BodyError("empty body: expected JSON")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"invalid JSON: {exc}") from None
    if type(obj) is not dict:
        raise BodyError(f"body is {a_json_type(obj)}, not an object")
    kind = classify_record(obj)
    if source == "audit":
        return _audit(obj, kind, body, partitions, record_limit)
    return _events(obj, kind, body, partitions, record_limit)


def _audit(
    obj: dict[str, Any], kind: str | None, body: bytes, partitions: int, limit: int
) -> Parsed:
    parsed = Parsed("audit")
    if kind == "audit":
        data = _single(obj, limit, "audit event")
        parsed.records.append(Record(data, audit_partition(obj, partitions), shared_id(obj, data)))
        return parsed
    if kind != "audit_list":
        hint = " (a Kubernetes Event: POST it to /events)" if kind == "event" else ""
        raise BodyError(
            f"body is not an audit.k8s.io EventList or Event (kind {_show(obj.get('kind'))}, "
            f"apiVersion {_show(obj.get('apiVersion'))}){hint}"
        )
    items = _items(obj, "EventList")
    spans = ListSpans(body, items)
    for i, item in enumerate(items):
        if type(item) is not dict:
            _non_object(parsed, i, item, spans.text(i))
            continue
        _take(parsed, i, item, limit, spans, audit_partition(item, partitions))
    return parsed


def _events(
    obj: dict[str, Any], kind: str | None, body: bytes, partitions: int, limit: int
) -> Parsed:
    parsed = Parsed("event")
    if kind == "event":
        data = _single(obj, limit, "event")
        parsed.records.append(Record(data, event_partition(obj, partitions)))
        return parsed
    if kind in ("audit", "audit_list") or obj.get("kind") not in ("EventList", "List"):
        hint = " (audit records: POST them to /audit)" if kind in ("audit", "audit_list") else ""
        raise BodyError(
            "body is not a Kubernetes Event or a list of Events (kind "
            f"{_show(obj.get('kind'))}, apiVersion {_show(obj.get('apiVersion'))}){hint}"
        )
    items = _items(obj, str(obj.get("kind")))
    spans = ListSpans(body, items)
    for i, item in enumerate(items):
        if type(item) is not dict:
            _non_object(parsed, i, item, spans.text(i) if item is not None else b"")
            continue
        _take(parsed, i, item, limit, spans, event_partition(item, partitions))
    return parsed


def _non_object(parsed: Parsed, i: int, item: Any, text: bytes) -> None:
    """Reject list item ``i``, a JSON value ``item`` (or one of its type) that is not an
    object; ``text`` is what a dead letter keeps."""
    if parsed.source == "audit":
        message = f"EventList item {i} is {a_json_type(item)}, not an object"
        parsed.rejected.append(Rejected(i, "not_object", message, text))
    elif item is None:
        parsed.rejected.append(Rejected(i, "null", f"item {i} is null (nothing to publish)"))
    else:
        message = (
            f"item {i}: json: cannot unmarshal {json_type(item)} into Go value of type "
            "map[string]interface {}"
        )
        parsed.rejected.append(Rejected(i, "not_object", message, text))


def _too_large(i: int, size: int, limit: int, text: bytes) -> Rejected:
    message = f"item {i}: record of {size} bytes exceeds the limit of {limit} bytes"
    return Rejected(i, "too_large", message, text)


def _single(obj: dict[str, Any], limit: int, what: str) -> bytes:
    data = orjson.dumps(obj)
    if len(data) > limit:
        raise BodyError(
            f"{what} of {len(data)} bytes exceeds the limit of {limit} bytes (the stream's "
            "largest message)",
            status=413,
            reason="too_large",
        )
    return data


def _items(obj: dict[str, Any], kind: str) -> list[Any]:
    items = obj.get("items")
    if type(items) is not list:
        what = json_type(items) if "items" in obj else "missing"
        raise BodyError(f"{kind} items must be a list, not {what}")
    return items


def _take(
    parsed: Parsed, i: int, item: dict[str, Any], limit: int, spans: ListSpans, partition: int
) -> None:
    """List item ``i`` as a record of ``partition``, or rejected when larger than ``limit``."""
    data = orjson.dumps(item)
    if len(data) > limit:
        parsed.rejected.append(_too_large(i, len(data), limit, spans.text(i)))
        return
    shared = shared_id(item, data) if parsed.source == "audit" else ""
    parsed.records.append(Record(data, partition, shared))


def shared_id(item: Any, data: bytes | memoryview) -> str:
    """Upstream's message id on ``audit.k8s.activity``: the ``auditID``.

    A record of another stage than ``ResponseComplete`` gets ``<auditID>-<stage>``: the stages
    of one request share the auditID, and the stream would drop all but the first as duplicates.
    A record without an auditID gets ``ingest-shared-<hash of its bytes>``.
    """
    audit_id = item.get("auditID") if type(item) is dict else None
    if type(audit_id) is not str or not audit_id:
        return "ingest-shared-" + hashlib.sha256(data).hexdigest()[:40]
    stage = item.get("stage")
    if stage == "ResponseComplete" or type(stage) is not str or not stage:
        return audit_id
    return f"{audit_id}-{stage}"


def event_shared_id(event: Any, data: bytes | memoryview) -> str:
    """Upstream's message id of an Event on ``events.<namespace>``: its ``metadata.uid``, or
    ``<uid>-<resourceVersion>`` when the resourceVersion is set and not ``"0"`` (what the API
    server's Event publisher sends; a later version of an Event is then not dropped as a
    duplicate of the first). An Event without a uid gets ``ingest-shared-<hash of its bytes>``.
    """
    meta = event.get("metadata") if type(event) is dict else None
    uid = meta.get("uid") if type(meta) is dict else None
    if type(uid) is not str or not uid:
        return "ingest-shared-" + hashlib.sha256(data).hexdigest()[:40]
    assert type(meta) is dict
    version = meta.get("resourceVersion")
    if type(version) is str and version not in ("", "0"):
        return f"{uid}-{version}"
    return uid


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:100])
    return "missing" if value is None else json_type(value)
