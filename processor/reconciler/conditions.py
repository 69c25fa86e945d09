"""Observe inventory objects' conditions in audit records (``docs/design.md#inventory-1``,
``#inventory-5``).

The inventory controllers only write status conditions (``Ready``, plus ``EndpointsResolved`` on
Link, Cable and Circuit). Every successful write of an inventory object that carries the object
(a status write, or any create/update/patch at ``RequestResponse`` level) shows the conditions as
they are after the write; :func:`observe` turns such an audit record into an :class:`Observation`.

Where the state comes from, in order: the ``responseObject`` (the object as stored after the
write), else, for a status-subresource write only, the ``requestObject`` (an ``update`` carries the
whole object; a JSON merge patch replaces the whole ``conditions`` list, so it carries all of them
when any changed). A main-resource request body never counts: the API server ignores ``status``
there.

The CRD defaults a new object's status to ``Ready=False, reason=Pending`` before any controller
ran; that placeholder is not an observation (the controller itself never reports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DISPLAY_NAME_KINDS",
    "FOLLOWED",
    "INVENTORY_GROUP",
    "INVENTORY_VERSION",
    "KINDS",
    "PENDING_REASON",
    "RESOURCES",
    "Condition",
    "Observation",
    "observe",
]

INVENTORY_GROUP = "inventory.miloapis.com"
INVENTORY_VERSION = "v1alpha1"

#: plural resource -> Kind of the 12 inventory kinds.
KINDS: dict[str, str] = {
    "regions": "Region",
    "sites": "Site",
    "clusters": "Cluster",
    "nodes": "Node",
    "networkdevices": "NetworkDevice",
    "links": "Link",
    "providers": "Provider",
    "racks": "Rack",
    "ports": "Port",
    "cables": "Cable",
    "circuits": "Circuit",
    "virtualmachines": "VirtualMachine",
}
#: Kind -> plural resource.
RESOURCES: dict[str, str] = {kind: plural for plural, kind in KINDS.items()}

#: Kinds whose events carry ``spec.displayName`` as display name (the others use the name).
DISPLAY_NAME_KINDS = frozenset({"Region", "Site", "Cluster", "Provider"})

#: Condition types followed, in emission order.
FOLLOWED: tuple[str, ...] = ("Ready", "EndpointsResolved")

#: The reason of the CRD-defaulted placeholder condition.
PENDING_REASON = "Pending"

_WRITE_VERBS = frozenset({"create", "update", "patch"})


@dataclass(frozen=True, slots=True)
class Condition:
    """One ``metav1.Condition`` (the fields the transition rules and the Events need)."""

    type: str
    status: str
    reason: str = ""
    message: str = ""
    observed_generation: int | None = None

    @property
    def ready(self) -> bool:
        """True when the condition's status is ``True``."""
        return self.status == "True"

    def to_json(self) -> dict[str, Any]:
        """The condition as a JSON-ready map (for the state bucket)."""
        out: dict[str, Any] = {"type": self.type, "status": self.status, "reason": self.reason}
        if self.message:
            out["message"] = self.message
        if self.observed_generation is not None:
            out["observedGeneration"] = self.observed_generation
        return out

    @classmethod
    def from_json(cls, data: Any, followed: tuple[str, ...] | None = FOLLOWED) -> Condition | None:
        """A condition from its JSON map, or None when it is not one (of ``followed``).

        Args:
            data: a ``metav1.Condition`` as JSON.
            followed: the condition types wanted; None accepts any.
        """
        if type(data) is not dict:
            return None
        ctype = data.get("type")
        status = data.get("status")
        if type(ctype) is not str or type(status) is not str:
            return None
        if followed is not None and ctype not in followed:
            return None
        generation = data.get("observedGeneration")
        return cls(
            type=ctype,
            status=status,
            reason=_text(data.get("reason")),
            message=_text(data.get("message")),
            observed_generation=_int(generation),
        )


@dataclass(frozen=True, slots=True)
class Observation:
    """What one audit record says about one inventory object.

    Attributes:
        kind, name: the object (cluster-scoped, so no namespace).
        uid: ``metadata.uid`` ("" when the record does not show it).
        api_version: ``inventory.miloapis.com/<version>``.
        generation: ``metadata.generation`` (None when unknown).
        resource_version: ``metadata.resourceVersion`` ("" when unknown).
        display_name: ``spec.displayName`` ("" when the record does not show it).
        conditions: the followed conditions the record shows (placeholders left out);
            empty when it shows none.
        time: when the write completed (``stageTimestamp``, else ``requestReceivedTimestamp``).
        audit_id: the record's ``auditID``.
        deleted: a successful delete of the object.
        status_write: a write of the ``status`` subresource.
    """

    kind: str
    name: str
    uid: str
    api_version: str
    generation: int | None
    resource_version: str
    display_name: str
    conditions: dict[str, Condition]
    time: str
    audit_id: str
    deleted: bool = False
    status_write: bool = False

    @property
    def key(self) -> str:
        """The object's key: ``<kindlower>.<name>``."""
        return object_key(self.kind, self.name)


def object_key(kind: str, name: str) -> str:
    """The state key of an object: ``<kindlower>.<name>`` (valid as a NATS KV key)."""
    return f"{kind.lower()}.{name}"


def observe(record: Any, followed: tuple[str, ...] = FOLLOWED) -> Observation | None:
    """The observation an audit record makes of an inventory object, or None.

    Args:
        record: one decoded ``audit.k8s.io/v1`` Event.
        followed: the condition types to extract.

    Returns:
        None unless the record is a successful, completed create/update/patch/delete of one of
        the 12 inventory kinds.
    """
    if type(record) is not dict:
        return None
    ref = record.get("objectRef")
    if type(ref) is not dict or ref.get("apiGroup") != INVENTORY_GROUP:
        return None
    kind = KINDS.get(ref.get("resource", ""))
    name = ref.get("name")
    verb = record.get("verb")
    if kind is None or type(name) is not str or not name or not _completed_ok(record):
        return None
    subresource = ref.get("subresource") or ""
    version = ref.get("apiVersion") or INVENTORY_VERSION
    time = _text(record.get("stageTimestamp")) or _text(record.get("requestReceivedTimestamp"))
    base: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "api_version": f"{INVENTORY_GROUP}/{version}",
        "time": time,
        "audit_id": _text(record.get("auditID")),
    }
    if verb == "delete" and not subresource:
        empty: dict[str, Any] = {"uid": "", "generation": None, "resource_version": ""}
        return Observation(display_name="", conditions={}, deleted=True, **empty, **base)
    if verb not in _WRITE_VERBS or subresource not in ("", "status"):
        return None
    obj = _object(record, kind, subresource == "status")
    return _from_object(obj, record, base, subresource == "status", followed)


def _from_object(
    obj: dict[str, Any] | None,
    record: dict[str, Any],
    base: dict[str, Any],
    status_write: bool,
    followed: tuple[str, ...],
) -> Observation | None:
    meta = obj.get("metadata") if obj is not None else None
    meta = meta if type(meta) is dict else {}
    spec = _spec(obj, record)
    display = spec.get("displayName") if base["kind"] in DISPLAY_NAME_KINDS else None
    conditions = _conditions(obj, followed)
    if not conditions and not display and not meta.get("uid"):
        return None
    return Observation(
        uid=_text(meta.get("uid")),
        generation=_int(meta.get("generation")),
        resource_version=_text(meta.get("resourceVersion")),
        display_name=display if type(display) is str else "",
        conditions=conditions,
        status_write=status_write,
        **base,
    )


def _completed_ok(record: dict[str, Any]) -> bool:
    stage = record.get("stage")
    if stage is not None and stage != "ResponseComplete":
        return False
    status = record.get("responseStatus")
    code = status.get("code") if type(status) is dict else None
    return isinstance(code, int | float) and 200 <= code < 300


def _object(record: dict[str, Any], kind: str, status_write: bool) -> dict[str, Any] | None:
    response = record.get("responseObject")
    if type(response) is dict and response.get("kind", kind) == kind:
        return response
    request = record.get("requestObject")
    if status_write and type(request) is dict and request.get("kind", kind) == kind:
        return request
    return None


def _spec(obj: dict[str, Any] | None, record: dict[str, Any]) -> dict[str, Any]:
    for candidate in (obj, record.get("requestObject")):
        if type(candidate) is dict and type(candidate.get("spec")) is dict:
            spec: dict[str, Any] = candidate["spec"]
            return spec
    return {}


def _conditions(obj: dict[str, Any] | None, followed: tuple[str, ...]) -> dict[str, Condition]:
    status = obj.get("status") if obj is not None else None
    items = status.get("conditions") if type(status) is dict else None
    found: dict[str, Condition] = {}
    if type(items) is not list:
        return found
    for item in items:
        condition = Condition.from_json(item, followed)
        if condition is None or (not condition.ready and condition.reason == PENDING_REASON):
            continue
        found[condition.type] = condition
    return found


def _text(value: Any) -> str:
    return value if type(value) is str else ""


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    return None
