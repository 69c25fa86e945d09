"""Kubernetes Events in either API version: ``k8s_events`` holds each Event as it arrived
(``events.k8s.io/v1`` or core ``v1``); the native Events API answers in the version asked for.

The field mapping is Kubernetes' own (``regarding`` <-> ``involvedObject``, ``note`` <->
``message``, ``reportingController`` <-> ``source.component``/``reportingComponent``,
``deprecated*`` <-> ``firstTimestamp``/``lastTimestamp``/``count``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENTS_V1 = "events.k8s.io/v1"
CORE_V1 = "v1"

# (events.k8s.io/v1 key, core v1 key) of fields that only change name
_RENAMED = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
)
_SAME = ("metadata", "reason", "type", "eventTime", "series", "action", "related",
         "reportingInstance")  # fmt: skip


def is_events_v1(event: Mapping[str, Any]) -> bool:
    """Whether a stored Event is in the ``events.k8s.io/v1`` shape."""
    if event.get("apiVersion") == EVENTS_V1:
        return True
    return "regarding" in event or "note" in event


def to_events_v1(event: Mapping[str, Any]) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event."""
    if is_events_v1(event):
        out = dict(event)
    else:
        out = {k: event[k] for k in _SAME if k in event}
        for new, old in _RENAMED:
            if old in event:
                out[new] = event[old]
        source = event.get("source")
        if isinstance(source, Mapping):
            out["deprecatedSource"] = dict(source)
            if not out.get("reportingController") and source.get("component"):
                out["reportingController"] = source["component"]
            if not out.get("reportingInstance") and source.get("host"):
                out["reportingInstance"] = source["host"]
    out["apiVersion"], out["kind"] = EVENTS_V1, "Event"
    return out


def to_core_v1(event: Mapping[str, Any]) -> dict[str, Any]:
    """A core ``v1`` Event."""
    if not is_events_v1(event):
        out = dict(event)
    else:
        out = {k: event[k] for k in _SAME if k in event}
        for new, old in _RENAMED:
            if new in event:
                out[old] = event[new]
        source = event.get("deprecatedSource")
        source = dict(source) if isinstance(source, Mapping) else {}
        if event.get("reportingController") and "component" not in source:
            source["component"] = event["reportingController"]
        if event.get("reportingInstance") and "host" not in source:
            source["host"] = event["reportingInstance"]
        if source:
            out["source"] = source
    out["apiVersion"], out["kind"] = CORE_V1, "Event"
    return out


def core_selector(selector: str) -> str:
    """A core v1 field selector in the stored keys: ``involvedObject.*`` is ``regarding.*``."""
    terms = []
    for term in selector.split(","):
        stripped = term.strip()
        if stripped.startswith("involvedObject."):
            stripped = "regarding." + stripped[len("involvedObject.") :]
        terms.append(stripped)
    return ",".join(terms)
