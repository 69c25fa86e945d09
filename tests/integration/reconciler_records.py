"""Audit records and Events of inventory objects, as the API server and the controllers write them.

Used by the reconciler tests and the inventory end-to-end test. The controller writes status with a
JSON merge patch on the ``status`` subresource as ``system:serviceaccount:inventory-system:...``;
people write the main resource. Times are ``2026-11-20T10:MM:SS`` with ``seq`` seconds.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from processor.reconciler.conditions import INVENTORY_GROUP, RESOURCES
from processor.subjects import partition_of

CONTROLLER = "system:serviceaccount:inventory-system:inventory-controller-manager"
API_VERSION = f"{INVENTORY_GROUP}/v1alpha1"


def ts(seq: float) -> str:
    """``2026-11-20T10:MM:SS.ffffffZ`` for ``seq`` seconds after 10:00."""
    whole = int(seq)
    micros = round((seq - whole) * 1_000_000)
    return f"2026-11-20T10:{whole // 60 % 60:02d}:{whole % 60:02d}.{micros:06d}Z"


def uid_of(kind: str, name: str, incarnation: int = 0) -> str:
    """A stable uid per object (``incarnation`` tells re-created objects apart)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"inventory/{kind}/{name}/{incarnation}"))


def condition(
    ctype: str, status: str, reason: str, message: str = "", generation: int = 1
) -> dict[str, Any]:
    """A ``metav1.Condition``."""
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-11-20T10:00:00Z",
    }


PENDING = condition("Ready", "False", "Pending", "Waiting for reconciliation", 0)


def obj(
    kind: str,
    name: str,
    *,
    spec: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    rv: int = 1,
    generation: int = 1,
    incarnation: int = 0,
) -> dict[str, Any]:
    """An inventory object as the API server returns it."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "uid": uid_of(kind, name, incarnation),
            "resourceVersion": str(rv),
            "generation": generation,
            "creationTimestamp": "2026-11-20T10:00:00Z",
        },
        "spec": spec or {},
        "status": {"conditions": conditions if conditions is not None else [PENDING]},
    }


def audit(
    kind: str,
    name: str,
    *,
    verb: str,
    seq: float,
    user: str = "alice",
    subresource: str = "",
    request: Any = None,
    response: Any = None,
    code: int | None = None,
) -> dict[str, Any]:
    """A ``ResponseComplete`` audit event of an inventory object."""
    plural = RESOURCES[kind]
    ref: dict[str, Any] = {
        "resource": plural,
        "name": name,
        "apiGroup": INVENTORY_GROUP,
        "apiVersion": "v1alpha1",
    }
    uri = f"/apis/{API_VERSION}/{plural}" + ("" if verb == "create" else f"/{name}")
    if subresource:
        ref["subresource"] = subresource
        uri += f"/{subresource}"
    record: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{name}/{verb}/{seq}")),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user, "uid": f"uid-{user}", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.24"],
        "userAgent": "kubectl/v1.31.2" if user == "alice" else "manager/v0.0.0",
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code or (201 if verb == "create" else 200)},
        "requestReceivedTimestamp": ts(seq),
        "stageTimestamp": ts(seq + 0.02),
    }
    if request is not None:
        record["requestObject"] = request
    if response is not None:
        record["responseObject"] = response
    return record


def create(
    kind: str, name: str, spec: dict[str, Any], *, seq: float, rv: int, user: str = "alice"
) -> dict[str, Any]:
    """A person creates an object (the response shows the CRD-defaulted Pending status)."""
    request = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    response = obj(kind, name, spec=spec, rv=rv)
    return audit(kind, name, verb="create", seq=seq, user=user, request=request, response=response)


def status_patch(
    kind: str,
    name: str,
    conditions: list[dict[str, Any]],
    *,
    seq: float,
    rv: int,
    spec: dict[str, Any] | None = None,
    incarnation: int = 0,
) -> dict[str, Any]:
    """The controller's merge patch of the status subresource."""
    request = {"status": {"conditions": conditions}}
    response = obj(kind, name, spec=spec, conditions=conditions, rv=rv, incarnation=incarnation)
    return audit(
        kind,
        name,
        verb="patch",
        seq=seq,
        user=CONTROLLER,
        subresource="status",
        request=request,
        response=response,
    )


def controller_event(
    kind: str,
    name: str,
    *,
    ready: bool,
    reason: str,
    note: str,
    seq: float,
    display: str | None = None,
) -> dict[str, Any]:
    """The Event the inventory controller's recorder emits itself
    (``docs/design.md#inventory-6``)."""
    prefix = "inventory.miloapis.com/"
    word = "ready" if ready else "not_ready"
    return {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": {
            "name": f"{name}.{int(seq * 1e9):x}",
            "namespace": "default",
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"controller-event/{name}/{seq}")),
            "creationTimestamp": ts(int(seq))[:19] + "Z",
            "annotations": {
                prefix + "event-type": f"inventory.{kind.lower()}.{word}",
                prefix + "observed-generation": "1",
                prefix + "resource-kind": kind,
                prefix + "resource-name": name,
                prefix + "display-name": display or name,
                prefix + "condition-reason": reason,
            },
        },
        "eventTime": ts(seq),
        "reportingController": "inventory.miloapis.com/inventory-controller",
        "reportingInstance": "inventory-controller-manager-7c9d",
        "action": "Ready" if ready else "NotReady",
        "reason": "Ready" if ready else "NotReady",
        "regarding": {
            "apiVersion": API_VERSION,
            "kind": kind,
            "name": name,
            "uid": uid_of(kind, name),
        },
        "note": note,
        "type": "Normal" if ready else "Warning",
    }


def audit_subject(record: dict[str, Any], partitions: int) -> str:
    """The partitioned audit subject of a record."""
    ref = record["objectRef"]
    n = partition_of(
        ref["apiGroup"], ref["resource"], ref.get("namespace", ""), ref["name"], partitions
    )
    return f"audit.k8s.p{n}"


def encode(record: dict[str, Any]) -> bytes:
    """JSON bytes of a record."""
    return orjson.dumps(record)
