"""The ``events.k8s.io/v1`` Events the reconciler derives, in the inventory recorder's shape.

Shape and annotations follow the upstream recorder (``docs/design.md#inventory-6``): reasons
``Ready`` (type Normal) and ``NotReady`` (type Warning), ``action = reason``, ``note`` = the
condition message, ``reportingController = inventory.miloapis.com/inventory-controller``,
``regarding = {apiVersion, kind, name, uid}`` (no namespace: the kinds are cluster-scoped), the
Event itself in the configured namespace, and the annotations ``inventory.miloapis.com/event-type``
(``inventory.<kindlower>.ready`` / ``.not_ready``), ``display-name``, ``condition-reason``,
``resource-kind``, ``resource-name`` and ``observed-generation``. The JSON carries the fields the
event exporter always writes (``deprecatedSource`` etc., ``docs/design.md#pipeline-9-1``).

Two additions: the annotation ``activity.miloapis.com/derived-by`` marks an Event as the
reconciler's (so it can tell the controllers' own Events apart), and ``EndpointsResolved``
transitions get the event types ``inventory.<kindlower>.endpoints_resolved`` /
``.endpoints_not_resolved`` (reasons ``EndpointsResolved`` / ``EndpointsNotResolved``).

Everything is derived from the audit record of the write, never from the clock: the name is
``<objectName>.<unixNanoHex of the write time>``, the uid a UUIDv5 of the transition, and the
NATS message id is the uid (``docs/design.md#pipeline-8-4``), so a replay publishes the same Event
again and JetStream (and the activity name hash downstream) drops the duplicate.
"""

from __future__ import annotations

import calendar
import uuid
from typing import Any

from processor.reconciler.conditions import FOLLOWED, INVENTORY_GROUP, INVENTORY_VERSION
from processor.reconciler.transitions import ObjectState, Transition
from processor.records.timefmt import format_micro, format_seconds, parse
from processor.subjects import sanitize_token

__all__ = [
    "ANNOTATION_PREFIX",
    "DERIVED_BY",
    "EVENT_TYPE",
    "REPORTING_CONTROLLER",
    "build_event",
    "event_reason",
    "event_subject",
    "event_type",
]

REPORTING_CONTROLLER = "inventory.miloapis.com/inventory-controller"
ANNOTATION_PREFIX = "inventory.miloapis.com/"
EVENT_TYPE = ANNOTATION_PREFIX + "event-type"
CONDITION_REASON = ANNOTATION_PREFIX + "condition-reason"
RESOURCE_KIND = ANNOTATION_PREFIX + "resource-kind"
RESOURCE_NAME = ANNOTATION_PREFIX + "resource-name"
DERIVED_BY = "activity.miloapis.com/derived-by"

#: UUIDv5 namespace of derived Event uids.
_UID_NAMESPACE = uuid.UUID("6f0f3b0e-6c1d-5b8e-9a43-2d7c1e5a9b10")
_MAX_NAME = 253


def event_type(kind: str, condition_type: str, ready: bool) -> str:
    """The ``inventory.miloapis.com/event-type`` value of a transition."""
    if condition_type == "Ready":
        return f"inventory.{kind.lower()}.{'ready' if ready else 'not_ready'}"
    suffix = "endpoints_resolved" if ready else "endpoints_not_resolved"
    return f"inventory.{kind.lower()}.{suffix}"


def event_reason(condition_type: str, ready: bool) -> str:
    """The Event reason: ``Ready``/``NotReady`` (``EndpointsResolved``/``EndpointsNotResolved``)."""
    if condition_type == "Ready":
        return "Ready" if ready else "NotReady"
    return "EndpointsResolved" if ready else "EndpointsNotResolved"


def event_subject(namespace: str, prefix: str = "events") -> str:
    """The subject an Event of ``namespace`` is published on: ``events.<namespace>``."""
    return f"{prefix}.{sanitize_token(namespace, 'default')}"


def unix_nanos(time: str) -> int:
    """Nanoseconds since the epoch of an RFC3339 time (microsecond precision)."""
    dt = parse(time)
    return calendar.timegm(dt.utctimetuple()) * 1_000_000_000 + dt.microsecond * 1000


def build_event(
    state: ObjectState,
    transition: Transition,
    *,
    namespace: str = "default",
    instance: str = "activity-reconciler",
    time: str,
) -> dict[str, Any]:
    """The Event reporting ``transition`` of the object in ``state``.

    Args:
        state: the object's state after the observation (identity, display name, generation).
        transition: the change to report.
        namespace: where the Event lives (``INVENTORY_ACTIVITY_NAMESPACE`` upstream).
        instance: ``reportingInstance`` and the ``derived-by`` annotation value.
        time: when the write that made the transition completed (RFC3339).

    Raises:
        ValueError: ``time`` is not an RFC3339 date-time.
    """
    condition = transition.condition
    ready = condition.ready
    reason = event_reason(condition.type, ready)
    when = parse(time)
    # one name per condition type even when two conditions change in the same write
    offset = FOLLOWED.index(condition.type) if condition.type in FOLLOWED else len(FOLLOWED)
    name = f"{state.name}.{unix_nanos(time) + offset:x}"[:_MAX_NAME]
    generation = condition.observed_generation
    if generation is None:
        generation = state.generation
    note = condition.message or ("" if ready else condition.reason)
    regarding: dict[str, Any] = {
        "kind": state.kind,
        "name": state.name,
        "apiVersion": state.api_version or f"{INVENTORY_GROUP}/{INVENTORY_VERSION}",
    }
    if state.uid:
        regarding["uid"] = state.uid
    uid = str(uuid.uuid5(_UID_NAMESPACE, _uid_key(state, transition, time)))
    return {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid,
            "creationTimestamp": format_seconds(when),
            "annotations": {
                EVENT_TYPE: event_type(state.kind, condition.type, ready),
                ANNOTATION_PREFIX + "observed-generation": str(generation or 0),
                RESOURCE_KIND: state.kind,
                RESOURCE_NAME: state.name,
                ANNOTATION_PREFIX + "display-name": state.display_name or state.name,
                CONDITION_REASON: condition.reason,
                DERIVED_BY: instance,
            },
        },
        "eventTime": format_micro(when),
        "reportingController": REPORTING_CONTROLLER,
        "reportingInstance": instance,
        "action": reason,
        "reason": reason,
        "regarding": regarding,
        "note": note,
        "type": "Normal" if ready else "Warning",
        "deprecatedSource": {},
        "deprecatedFirstTimestamp": None,
        "deprecatedLastTimestamp": None,
    }


def _uid_key(state: ObjectState, transition: Transition, time: str) -> str:
    c = transition.condition
    return "/".join(
        (
            state.kind,
            state.name,
            state.uid,
            c.type,
            c.status,
            c.reason,
            state.resource_version,
            state.audit_id,
            time,
        )
    )


def transition_key(event: dict[str, Any]) -> tuple[str, str]:
    """``(event type, condition reason)`` of an inventory Event ("" when not annotated)."""
    meta = event.get("metadata")
    annotations = meta.get("annotations") if type(meta) is dict else None
    if type(annotations) is not dict:
        return "", ""
    etype = annotations.get(EVENT_TYPE)
    reason = annotations.get(CONDITION_REASON)
    return (etype if type(etype) is str else "", reason if type(reason) is str else "")
