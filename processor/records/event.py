"""Kubernetes Event records (events.k8s.io/v1 and core/v1): decode, involved object, CEL variables.

An event is kept as the generic decoded map (every JSON number a float). The involved object is
``regarding`` (events.k8s.io/v1) or ``involvedObject`` (core/v1); when the event has no
``regarding`` key at all, a copy gets ``regarding = involvedObject`` so rules can always write
``event.regarding.*`` (``docs/design.md#policy-engine-4-4``, ``#pipeline-9-3``).

:func:`classify_record` tells the translate command which kind of record an object is;
:func:`is_event_list` whether a message of the EVENTS stream holds a list of Events.
"""

from __future__ import annotations

from typing import Any, Literal

from processor.errors import RecordError
from processor.records._json import floatify, json_type, load_object

__all__ = [
    "SOURCE_ANNOTATIONS",
    "classify_record",
    "decode_event",
    "event_actor",
    "event_key",
    "event_source",
    "event_vars",
    "involved_object",
    "is_event_list",
    "normalize_event",
]

#: ``source`` variable field -> annotation it is read from (docs/design.md#d11).
SOURCE_ANNOTATIONS = (
    ("planeType", "activity.miloapis.com/source-plane-type"),
    ("cluster", "activity.miloapis.com/source-cluster"),
    ("region", "activity.miloapis.com/source-region"),
    ("city", "activity.miloapis.com/source-city"),
)

_EMPTY_SOURCE = {"planeType": "", "cluster": "", "region": "", "city": ""}


def decode_event(
    raw: bytes | bytearray | memoryview | str | dict[str, Any], *, copy: bool = True
) -> dict[str, Any] | None:
    """Decode one Kubernetes Event; every JSON number becomes a float.

    Args:
        raw: the JSON payload, or an already-parsed object.
        copy: for an already-parsed object: True copies it through JSON first (never changed);
            False converts its numbers in place (only for objects the caller owns).

    Returns:
        The event map, or None for a JSON ``null`` payload (skipped, like upstream).

    Raises:
        RecordError: invalid JSON or a payload that is not an object (e.g. an array).
    """
    obj = load_object(raw, "event", copy)
    if obj is None:
        return None
    if type(obj) is not dict:
        raise RecordError(
            f"json: cannot unmarshal {json_type(obj)} into Go value of type "
            "map[string]interface {}"
        )
    floatify(obj)
    return obj


def involved_object(event: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
    """The policy-index identity of an event (docs/design.md#policy-engine-4-4, steps 2-3).

    Returns:
        ``(apiGroup, kind, involved)`` or None when the event is skipped (no involved object, or
        an empty kind). ``apiGroup`` is the non-standard ``involved.apiGroup`` when it is a
        non-empty string, else the text before the last ``/`` of ``involved.apiVersion``
        (``""`` for ``v1`` and any group-less version).
    """
    involved = event.get("regarding")
    if type(involved) is not dict:
        involved = event.get("involvedObject")
        if type(involved) is not dict:
            return None
    kind = involved.get("kind")
    if type(kind) is not str or not kind:
        return None
    group = involved.get("apiGroup")
    if type(group) is not str or not group:
        version = involved.get("apiVersion")
        if type(version) is str and version and version != "v1":
            group = version.rpartition("/")[0]
        else:
            group = ""
    return group, kind, involved


def normalize_event(event: dict[str, Any], involved: dict[str, Any]) -> dict[str, Any]:
    """Step 4 of docs/design.md#policy-engine-4-4: a copy with ``regarding = involved`` when the
    event has no ``regarding`` key.

    A ``regarding`` key that exists, even as null, leaves the event unchanged (same object).
    """
    if "regarding" in event:
        return event
    out = dict(event)
    out["regarding"] = involved
    return out


def event_actor(event: dict[str, Any]) -> str:
    """``reportingController`` if a non-empty string, else ``source.component``, else ``""``."""
    actor = event.get("reportingController")
    if type(actor) is str and actor:
        return actor
    source = event.get("source")
    if type(source) is dict:
        component = source.get("component")
        if type(component) is str:
            return component
    return ""


def event_source(event: dict[str, Any]) -> dict[str, str]:
    """The ``source`` variable (docs/design.md#d11): ``{planeType, cluster, region, city}``, each
    ``""`` when its annotation is absent."""
    meta = event.get("metadata")
    annotations = meta.get("annotations") if type(meta) is dict else None
    if type(annotations) is not dict or not annotations:
        return dict(_EMPTY_SOURCE)
    out = {}
    for field, key in SOURCE_ANNOTATIONS:
        value = annotations.get(key)
        out[field] = value if type(value) is str else ""
    return out


def event_vars(event: dict[str, Any]) -> dict[str, Any]:
    """The CEL activation of event rules: ``event``, ``actor``, ``actorRef``, ``source``
    (docs/design.md#policy-engine-2-2).

    ``event`` is used as given (normalise it first with :func:`normalize_event`); no default
    empty maps are added.
    """
    actor = event_actor(event)
    return {
        "event": event,
        "actor": actor,
        "actorRef": {"type": "controller", "name": actor},
        "source": event_source(event),
    }


def event_key(event: dict[str, Any]) -> str | None:
    """The event index key ``"<apiGroup>/<Kind>"``; None when the event is skipped."""
    found = involved_object(event)
    if found is None:
        return None
    return f"{found[0]}/{found[1]}"


#: ``apiVersion`` of the lists of Events the EVENTS stream takes (:func:`is_event_list`)
EVENT_LIST_API_VERSIONS = ("v1", "events.k8s.io/v1")


def is_event_list(obj: Any) -> bool:
    """Whether a decoded object read from the EVENTS stream is a list of Kubernetes Events:
    ``kind: EventList`` with ``apiVersion`` ``v1`` or ``events.k8s.io/v1`` (docs/design.md#d12).

    Its ``items`` are Events (core v1 or events.k8s.io/v1, each judged alone); anything else on
    that stream is one Event.
    """
    return (
        type(obj) is dict
        and obj.get("kind") == "EventList"
        and type(obj.get("apiVersion")) is str
        and obj["apiVersion"] in EVENT_LIST_API_VERSIONS
    )


RecordClass = Literal["audit", "audit_list", "event"]

_EVENT_API_VERSIONS = frozenset({"v1", "events.k8s.io/v1", "events.k8s.io/v1beta1"})


def classify_record(obj: Any) -> RecordClass | None:
    """Which kind of input record a decoded JSON object is, for the translate command.

    Returns:
        ``"audit_list"`` for an audit.k8s.io ``EventList`` (its ``items`` are audit events),
        ``"audit"`` for an audit.k8s.io ``Event`` (or an object with ``auditID`` and ``stage``),
        ``"event"`` for a Kubernetes Event (``events.k8s.io/v1`` or ``v1`` kind ``Event``, or an
        object with ``regarding`` or ``involvedObject``), None otherwise.
    """
    if type(obj) is not dict:
        return None
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if type(api_version) is str and api_version.startswith("audit.k8s.io/"):
        if kind == "EventList":
            return "audit_list"
        if kind == "Event":
            return "audit"
    if kind == "Event" and type(api_version) is str and api_version in _EVENT_API_VERSIONS:
        return "event"
    if "auditID" in obj and "stage" in obj:
        return "audit"
    if "regarding" in obj or "involvedObject" in obj:
        return "event"
    return None
