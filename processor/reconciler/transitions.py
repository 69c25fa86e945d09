"""The transition rules of the inventory event recorder (``docs/design.md#inventory-6``), as pure
functions.

``readyTransitioned`` upstream, for each followed condition:

* to ``True`` from absent or from anything not ``True``: emit *ready*;
* to ``False``/``Unknown`` from absent (the first observation), from ``True``, or from a
  not-ready condition **with a different reason**: emit *not ready*;
* nothing for ``True`` -> ``True``, or not-ready -> not-ready with the same reason.

:class:`ObjectState` is what the reconciler remembers per object: the last conditions, the last
applied write (so a redelivered or older record changes nothing), the derived Events waiting for
their grace period, and the Events real controllers emitted (to recognise them). :func:`apply`
folds one :class:`~processor.reconciler.conditions.Observation` into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from processor.reconciler.conditions import FOLLOWED, Condition, Observation, object_key
from processor.records.timefmt import parse

__all__ = [
    "ControllerMark",
    "ObjectState",
    "Transition",
    "apply",
    "emits",
    "is_stale",
    "near",
    "remember_mark",
    "take_mark",
]

#: Controller Events remembered per object.
MAX_MARKS = 16


def emits(previous: Condition | None, current: Condition) -> bool:
    """Whether a change from ``previous`` (None = absent) to ``current`` is reported."""
    if current.ready:
        return previous is None or not previous.ready
    if previous is None or previous.ready:
        return True
    return previous.reason != current.reason


@dataclass(frozen=True, slots=True)
class Transition:
    """A reported change of one condition of one object."""

    condition: Condition
    previous: Condition | None

    @property
    def ready(self) -> bool:
        """True for a transition to ready."""
        return self.condition.ready


@dataclass(frozen=True, slots=True)
class ControllerMark:
    """An Event a real controller emitted: its event type, condition reason and time."""

    event_type: str
    reason: str
    time: str

    def to_json(self) -> list[str]:
        """``[event_type, reason, time]``."""
        return [self.event_type, self.reason, self.time]


@dataclass
class ObjectState:
    """Everything the reconciler keeps about one inventory object.

    Attributes:
        kind, name: the object.
        uid, api_version, display_name, generation: last known identity and labels of it.
        conditions: the last observed followed conditions by type.
        resource_version, time, audit_id: the last applied write (ordering guard).
        pending: derived Events waiting for their grace period:
            ``{"at": unix time it was derived, "event": {...}}``.
        marks: Events real controllers emitted for this object (newest last).
    """

    kind: str
    name: str
    uid: str = ""
    api_version: str = ""
    display_name: str = ""
    generation: int | None = None
    conditions: dict[str, Condition] = field(default_factory=dict)
    resource_version: str = ""
    time: str = ""
    audit_id: str = ""
    pending: list[dict[str, Any]] = field(default_factory=list)
    marks: list[ControllerMark] = field(default_factory=list)

    @property
    def key(self) -> str:
        """``<kindlower>.<name>``."""
        return object_key(self.kind, self.name)

    def to_json(self) -> dict[str, Any]:
        """The state as a JSON-ready map."""
        return {
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "apiVersion": self.api_version,
            "displayName": self.display_name,
            "generation": self.generation,
            "conditions": [c.to_json() for c in self.conditions.values()],
            "resourceVersion": self.resource_version,
            "time": self.time,
            "auditID": self.audit_id,
            "pending": self.pending,
            "marks": [m.to_json() for m in self.marks],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectState:
        """The state from :meth:`to_json` output."""
        conditions = {}
        for item in data.get("conditions") or ():
            condition = Condition.from_json(item, None)
            if condition is not None:
                conditions[condition.type] = condition
        return cls(
            kind=data["kind"],
            name=data["name"],
            uid=data.get("uid", ""),
            api_version=data.get("apiVersion", ""),
            display_name=data.get("displayName", ""),
            generation=data.get("generation"),
            conditions=conditions,
            resource_version=data.get("resourceVersion", ""),
            time=data.get("time", ""),
            audit_id=data.get("auditID", ""),
            pending=list(data.get("pending") or ()),
            marks=[ControllerMark(*m) for m in data.get("marks") or ()],
        )


def is_stale(state: ObjectState, obs: Observation) -> bool:
    """Whether ``obs`` is the last applied write again, or older than it.

    Writes are ordered by ``resourceVersion`` when both are integers (etcd revisions), else by
    time; a write of a different object with the same name (new uid) is never stale.
    """
    if not state.audit_id:
        return False
    if obs.audit_id and obs.audit_id == state.audit_id:
        return True
    if state.uid and obs.uid and state.uid != obs.uid:
        return False
    if state.resource_version.isdigit() and obs.resource_version.isdigit():
        return int(obs.resource_version) <= int(state.resource_version)
    try:
        return bool(state.time and obs.time and parse(obs.time) < parse(state.time))
    except ValueError:
        return False


def apply(
    state: ObjectState, obs: Observation, followed: tuple[str, ...] = FOLLOWED
) -> list[Transition]:
    """Fold ``obs`` into ``state`` and return the transitions to report (in ``followed`` order).

    A stale observation (see :func:`is_stale`) changes nothing. An observation of a new object
    with the same name (different uid) starts from no conditions.
    """
    if is_stale(state, obs):
        return []
    if state.uid and obs.uid and state.uid != obs.uid:
        state.conditions.clear()
        state.display_name = ""
    state.uid = obs.uid or state.uid
    state.api_version = obs.api_version or state.api_version
    state.display_name = obs.display_name or state.display_name
    if obs.generation is not None:
        state.generation = obs.generation
    transitions = []
    for ctype in followed:
        current = obs.conditions.get(ctype)
        if current is None:
            continue
        previous = state.conditions.get(ctype)
        if emits(previous, current):
            transitions.append(Transition(current, previous))
        state.conditions[ctype] = current
    state.resource_version = obs.resource_version or state.resource_version
    state.time = obs.time or state.time
    state.audit_id = obs.audit_id or state.audit_id
    return transitions


def remember_mark(state: ObjectState, mark: ControllerMark) -> None:
    """Remember a controller Event (the newest :data:`MAX_MARKS` are kept)."""
    if mark not in state.marks:
        state.marks.append(mark)
        del state.marks[:-MAX_MARKS]


def take_mark(state: ObjectState, event_type: str, reason: str, time: str, window: float) -> bool:
    """Consume a controller mark for the same transition within ``window`` seconds of ``time``."""
    for mark in state.marks:
        same = mark.event_type == event_type and mark.reason == reason
        if same and near(mark.time, time, window):
            state.marks.remove(mark)
            return True
    return False


def near(a: str, b: str, window: float) -> bool:
    """Whether two RFC3339 times are at most ``window`` seconds apart (False if unparsable)."""
    try:
        return abs((parse(a) - parse(b)).total_seconds()) <= window
    except ValueError:
        return False
