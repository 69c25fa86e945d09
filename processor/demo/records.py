"""Builders for realistic audit events and Kubernetes Events (demo scenario, test fixtures).

An :class:`AuditBuilder` makes ``audit.k8s.io/v1`` Events at stage ``ResponseComplete`` with the
request URI, user, source IP, user agent, timestamps (microseconds) and response status a
kube-apiserver writes; auditIDs and object UIDs are uuid4 values from a seeded RNG, so the same seed
gives the same records. Kubernetes Events are ``events.k8s.io/v1``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

Json = dict[str, Any]

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "AlreadyExists",
    422: "Invalid",
}
_STATUS_OK = {"create": 201}


@dataclass(frozen=True)
class User:
    """Who sends requests: the audit ``user`` block plus the client's agent and address."""

    username: str
    groups: tuple[str, ...] = ("system:authenticated",)
    uid: str = ""
    agent: str = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
    ip: str = "127.0.0.1"

    def audit_user(self) -> Json:
        """The ``user`` field of an audit event."""
        out: Json = {"username": self.username, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        return out


def timestamp(at: datetime) -> str:
    """RFC 3339 UTC with microseconds, as kube-apiserver writes audit timestamps."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds(at: datetime) -> str:
    """RFC 3339 UTC with seconds, as object metadata carries them."""
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AuditBuilder:
    """Seeded factory of audit events and Kubernetes Events."""

    seed: int = 7
    rng: random.Random = field(init=False)
    _rv: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._rv = 48_213_000 + self.rng.randrange(1000)

    def uid(self) -> str:
        """A uuid4 from the seeded RNG."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def resource_version(self) -> str:
        """The next resourceVersion (increasing, as etcd's revision)."""
        self._rv += self.rng.randint(3, 40)
        return str(self._rv)

    def suffix(self, n: int = 5) -> str:
        """A Kubernetes-style random name suffix (``7d9f8``)."""
        return "".join(self.rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))

    def audit(self, at: datetime, user: User, verb: str, resource: str, **kw: Any) -> Json:
        """One audit event; see :func:`build_audit` for the keyword arguments."""
        return build_audit(self, at, user, verb, resource, **kw)

    def event(self, at: datetime, **kw: Any) -> Json:
        """One events.k8s.io/v1 Event; see :func:`build_event` for the keyword arguments."""
        return build_event(self, at, **kw)


def request_uri(
    resource: str, group: str, version: str, namespace: str, name: str, subresource: str
) -> str:
    """The request path of a resource request."""
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{resource}"
    if name:
        base += f"/{name}"
    if subresource:
        base += f"/{subresource}"
    return base


def failure_status(code: int, message: str, resource: str, group: str, name: str) -> Json:
    """A ``metav1.Status`` of a failed request (the responseObject of a 4xx)."""
    details: Json = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "Unknown"),
        "details": details,
        "code": code,
    }


def build_audit(
    b: AuditBuilder,
    at: datetime,
    user: User,
    verb: str,
    resource: str,
    *,
    name: str = "",
    namespace: str = "",
    group: str = "",
    version: str = "v1",
    subresource: str = "",
    code: int | None = None,
    message: str = "",
    request: Any = None,
    response: Any = None,
    query: str = "",
    level: str = "RequestResponse",
    latency_ms: float | None = None,
) -> Json:
    """An ``audit.k8s.io/v1`` Event at stage ResponseComplete.

    Args:
        b: the seeded builder (auditID, latency).
        at: when the request was received.
        user: the requester.
        verb, resource, name, namespace, group, version, subresource: the request.
        code: the response code (default 201 for create, 200 otherwise).
        message: the failure message of a non-2xx response.
        request, response: requestObject / responseObject (omitted when None).
        query: the query string (``dryRun=All``, ``fieldManager=kubectl-edit``...).
        level: the audit level; ``Metadata`` drops the bodies.
        latency_ms: server time; drawn from the RNG when None.
    """
    code = code if code is not None else _STATUS_OK.get(verb, 200)
    collection = verb in ("create", "list", "watch", "deletecollection") and not subresource
    uri_name = "" if collection else name
    uri = request_uri(resource, group, version, namespace, uri_name, subresource)
    if query:
        uri += "?" + query
    latency = latency_ms if latency_ms is not None else b.rng.uniform(1.5, 40.0)
    ref: Json = {"resource": resource}
    for key, value in (
        ("namespace", namespace),
        ("name", name),
        ("apiGroup", group),
        ("apiVersion", version),
        ("subresource", subresource),
    ):
        if value:
            ref[key] = value
    rec: Json = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": b.uid(),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": user.audit_user(),
        "sourceIPs": [user.ip],
        "userAgent": user.agent,
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": timestamp(at),
        "stageTimestamp": timestamp(at + timedelta(microseconds=int(latency * 1000))),
        "annotations": {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow"},
    }
    if code >= 300:
        reason = _REASONS.get(code, "")
        rec["responseStatus"].update(status="Failure", message=message, reason=reason)
        response = failure_status(code, message, resource, group, name)
    if code != 403:
        rec["annotations"]["authorization.k8s.io/reason"] = "RBAC: allowed by ClusterRoleBinding"
    if level == "RequestResponse":
        if request is not None:
            rec["requestObject"] = request
        if response is not None:
            rec["responseObject"] = response
    return rec


def build_event(
    b: AuditBuilder,
    at: datetime,
    *,
    reason: str,
    note: str,
    regarding: Json,
    controller: str,
    instance: str = "",
    type: str = "Normal",
    namespace: str = "",
    annotations: dict[str, str] | None = None,
    action: str = "",
) -> Json:
    """An ``events.k8s.io/v1`` Event about ``regarding`` (apiVersion, kind, name, uid...)."""
    ns = namespace or regarding.get("namespace") or "default"
    name = f"{regarding['name']}.{int(at.timestamp() * 1e9):x}"
    meta: Json = {
        "name": name[:253],
        "namespace": ns,
        "uid": b.uid(),
        "resourceVersion": b.resource_version(),
        "creationTimestamp": seconds(at),
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": meta,
        "eventTime": timestamp(at),
        "reportingController": controller,
        "reportingInstance": instance or controller,
        "action": action or reason,
        "reason": reason,
        "regarding": regarding,
        "note": note,
        "type": type,
    }


def obj(
    b: AuditBuilder,
    at: datetime,
    api_version: str,
    kind: str,
    name: str,
    namespace: str = "",
    *,
    uid: str = "",
    spec: Any = None,
    status: Any = None,
    labels: dict[str, str] | None = None,
    manager: str = "",
    extra: Json | None = None,
) -> Json:
    """A Kubernetes object as the API server returns it (metadata with uid, resourceVersion...)."""
    meta: Json = {
        "name": name,
        "uid": uid or b.uid(),
        "resourceVersion": b.resource_version(),
        "generation": 1,
        "creationTimestamp": seconds(at),
    }
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    if manager:
        meta["managedFields"] = [
            {
                "manager": manager,
                "operation": "Update",
                "apiVersion": api_version,
                "time": seconds(at),
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {}} if spec is not None else {"f:metadata": {}},
            }
        ]
    out: Json = {"kind": kind, "apiVersion": api_version, "metadata": meta}
    if spec is not None:
        out["spec"] = spec
    if status is not None:
        out["status"] = status
    if extra:
        out.update(extra)
    return out
