"""The scenario's toolkit: a clock, the record list and shorthands for common requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from processor.demo.actors import SCHEDULER, controller, kubelet
from processor.demo.records import AuditBuilder, Json, User, obj

INVENTORY_GROUP = "inventory.miloapis.com"
INVENTORY_VERSION = "v1alpha1"
INVENTORY_API = f"{INVENTORY_GROUP}/{INVENTORY_VERSION}"
EVENT_NAMESPACE = "default"  # INVENTORY_ACTIVITY_NAMESPACE of the inventory controllers


@dataclass(frozen=True)
class ScenarioRecord:
    """One record of the scenario: an audit event or a Kubernetes Event, as published."""

    kind: Literal["audit", "event"]
    payload: dict[str, Any]

    @property
    def time(self) -> str:
        """When it happened (requestReceivedTimestamp or eventTime), RFC 3339."""
        key = "requestReceivedTimestamp" if self.kind == "audit" else "eventTime"
        return str(self.payload[key])


@dataclass
class Story:
    """Collects records at offsets (seconds) from ``start``."""

    start: datetime
    b: AuditBuilder
    records: list[ScenarioRecord] = field(default_factory=list)
    uids: dict[str, str] = field(default_factory=dict)

    def at(self, offset: float) -> datetime:
        """The time ``offset`` seconds into the story."""
        return self.start + timedelta(seconds=offset)

    def uid(self, key: str) -> str:
        """A stable uid per object key (the same object keeps its uid)."""
        if key not in self.uids:
            self.uids[key] = self.b.uid()
        return self.uids[key]

    def audit(self, offset: float, user: User, verb: str, resource: str, **kw: Any) -> Json:
        """Add an audit event; keyword arguments as :func:`processor.demo.records.build_audit`."""
        rec = self.b.audit(self.at(offset), user, verb, resource, **kw)
        self.records.append(ScenarioRecord("audit", rec))
        return rec

    def event(self, offset: float, **kw: Any) -> Json:
        """Add an events.k8s.io/v1 Event (:func:`processor.demo.records.build_event`)."""
        rec = self.b.event(self.at(offset), **kw)
        self.records.append(ScenarioRecord("event", rec))
        return rec

    def obj(
        self, offset: float, api_version: str, kind: str, name: str, ns: str = "", **kw: Any
    ) -> Json:
        """An object body with a stable uid for (kind, namespace, name)."""
        uid = self.uid(f"{kind}/{ns}/{name}")
        return obj(self.b, self.at(offset), api_version, kind, name, ns, uid=uid, **kw)

    def ref(self, api_version: str, kind: str, name: str, ns: str = "") -> Json:
        """The ``regarding`` of an Event about an object."""
        out: Json = {"apiVersion": api_version, "kind": kind, "name": name}
        if ns:
            out["namespace"] = ns
        out["uid"] = self.uid(f"{kind}/{ns}/{name}")
        return out

    # -- recurring shapes ------------------------------------------------------------------------
    def pod_started(self, offset: float, pod: str, ns: str, node: str, image: str) -> None:
        """A controller-made Pod: scheduler binding, Scheduled, pull/create/start, status patch."""
        self.audit(
            offset,
            controller("replicaset-controller"),
            "create",
            "pods",
            name=pod,
            namespace=ns,
            response=self.obj(offset, "v1", "Pod", pod, ns),
        )
        self.audit(
            offset + 0.05,
            SCHEDULER,
            "create",
            "pods",
            name=pod,
            namespace=ns,
            subresource="binding",
            request={"target": {"kind": "Node", "name": node}},
        )
        regarding = self.ref("v1", "Pod", pod, ns)
        self.event(
            offset + 0.06,
            reason="Scheduled",
            controller="default-scheduler",
            note=f"Successfully assigned {ns}/{pod} to {node}",
            regarding=regarding,
            action="Binding",
            instance="default-scheduler-control-plane-1",
        )
        kubelet_pod = {"controller": "kubelet", "instance": node, "regarding": regarding}
        self.event(
            offset + 1.2,
            reason="Pulled",
            action="Pulled",
            **kubelet_pod,
            note=f'Container image "{image}" already present on machine',
        )
        self.event(offset + 1.3, reason="Created", note="Created container app", **kubelet_pod)
        self.event(offset + 1.5, reason="Started", note="Started container app", **kubelet_pod)
        self.status_patch(offset + 2.0, kubelet(node), "pods", pod, ns, "", "v1")

    def status_patch(
        self,
        offset: float,
        user: User,
        resource: str,
        name: str,
        ns: str,
        group: str,
        version: str,
        current: Json | None = None,
    ) -> None:
        """A controller's status write (the noise every object produces).

        With ``current`` (the whole object with its new ``status``) the response is that object,
        as the API server returns it, so ``activity history`` can show the version; otherwise
        the request and response carry only the status.
        """
        body = {"status": current["status"] if current else {"observedGeneration": 1}}
        self.audit(
            offset,
            user,
            "patch",
            resource,
            name=name,
            namespace=ns,
            group=group,
            version=version,
            subresource="status",
            request=body,
            response=current if current else body,
        )

    def reads(self, offset: float, user: User, resource: str, ns: str, group: str = "") -> None:
        """A controller's list and watch of a resource (no activity)."""
        version = INVENTORY_VERSION if group == INVENTORY_GROUP else "v1"
        self.audit(
            offset,
            user,
            "list",
            resource,
            namespace=ns,
            group=group,
            version=version,
            query="limit=500&resourceVersion=0",
            level="Metadata",
        )
        self.audit(
            offset + 0.2,
            user,
            "watch",
            resource,
            namespace=ns,
            group=group,
            version=version,
            query="allowWatchBookmarks=true&watch=true",
            level="Metadata",
            latency_ms=300000.0,
        )

    def lease(self, offset: float, node: str) -> None:
        """A kubelet's node-lease renewal (no policy: skipped)."""
        self.audit(
            offset,
            kubelet(node),
            "update",
            "leases",
            name=node,
            namespace="kube-node-lease",
            group="coordination.k8s.io",
            level="Metadata",
        )
