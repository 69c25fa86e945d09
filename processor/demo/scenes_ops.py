"""The demo story's inventory thread and the day-two operations on the cluster's nodes."""

from __future__ import annotations

from collections.abc import Callable

from processor.demo.actors import ALICE, CAROL, INVENTORY_CONTROLLER, controller, kubelet
from processor.demo.records import Json, seconds
from processor.demo.scenes import FIXED_IMAGE, NS, WEB_RS, WORKER_RS, deployment
from processor.demo.story import (
    EVENT_NAMESPACE,
    INVENTORY_API,
    INVENTORY_GROUP,
    INVENTORY_VERSION,
    Story,
)


def circuit_before_provider(s: Story) -> None:
    """Carol creates Circuit ams-fra-1 before Provider zayo exists; it is ready once she adds it.

    The controller's status writes return the whole object, as the API server does, and Carol
    later raises the Circuit's bandwidth: ``activity history circuits ams-fra-1 --diff`` on the
    demo's data shows the created object, the two status changes and the spec change.
    """
    spec = {
        "providerRef": {"name": "zayo"},
        "type": "ProviderCircuit",
        "bandwidthMbps": 10000,
        "aEnd": {"kind": "Site", "name": "ams1"},
        "zEnd": {"kind": "Site", "name": "fra1"},
    }
    inv = {"group": INVENTORY_GROUP, "version": INVENTORY_VERSION}

    def circuit(spec: Json, status: Json | None = None) -> Json:
        return s.obj(
            900, INVENTORY_API, "Circuit", "ams-fra-1", spec=spec, status=status, manager="datumctl"
        )

    s.audit(
        900,
        CAROL,
        "create",
        "circuits",
        name="ams-fra-1",
        **inv,
        request={
            "apiVersion": INVENTORY_API,
            "kind": "Circuit",
            "metadata": {"name": "ams-fra-1"},
            "spec": spec,
        },
        response=circuit(spec),
    )
    s.audit(
        900.3,
        INVENTORY_CONTROLLER,
        "get",
        "providers",
        name="zayo",
        code=404,
        message='providers.inventory.miloapis.com "zayo" not found',
        **inv,
    )
    not_found = 'Provider "zayo" not found'
    s.status_patch(
        900.4,
        INVENTORY_CONTROLLER,
        "circuits",
        "ams-fra-1",
        "",
        INVENTORY_GROUP,
        INVENTORY_VERSION,
        current=circuit(spec, _ready_status(s, 900.4, "ProviderNotFound", not_found)),
    )
    _ready_event(s, 900.5, "Circuit", "ams-fra-1", "ams-fra-1", "ProviderNotFound", not_found)
    s.reads(930, INVENTORY_CONTROLLER, "providers", "", INVENTORY_GROUP)
    pspec = {"displayName": "Zayo", "type": "Transit"}
    s.audit(
        1000,
        CAROL,
        "create",
        "providers",
        name="zayo",
        **inv,
        request={
            "apiVersion": INVENTORY_API,
            "kind": "Provider",
            "metadata": {"name": "zayo"},
            "spec": pspec,
        },
        response=s.obj(1000, INVENTORY_API, "Provider", "zayo", spec=pspec),
    )
    s.status_patch(
        1000.3,
        INVENTORY_CONTROLLER,
        "providers",
        "zayo",
        "",
        INVENTORY_GROUP,
        INVENTORY_VERSION,
        current=s.obj(
            1000,
            INVENTORY_API,
            "Provider",
            "zayo",
            spec=pspec,
            status=_ready_status(s, 1000.3, "Accepted", ""),
        ),
    )
    _ready_event(s, 1000.4, "Provider", "zayo", "Zayo", "Accepted", "")
    ready = _ready_status(s, 1000.6, "Accepted", "")
    s.status_patch(
        1000.6,
        INVENTORY_CONTROLLER,
        "circuits",
        "ams-fra-1",
        "",
        INVENTORY_GROUP,
        INVENTORY_VERSION,
        current=circuit(spec, ready),
    )
    _ready_event(s, 1000.7, "Circuit", "ams-fra-1", "ams-fra-1", "Accepted", "")
    upgraded = spec | {"bandwidthMbps": 100000}
    s.audit(
        1050,
        CAROL,
        "patch",
        "circuits",
        name="ams-fra-1",
        **inv,
        query="fieldManager=kubectl-patch",
        request={"spec": {"bandwidthMbps": 100000}},
        response=circuit(upgraded, ready),
    )
    node = {
        "siteRef": {"name": "ams1"},
        "placement": {"rackRef": {"name": "r7"}, "startUnit": 12, "unitHeight": 1},
    }
    s.audit(
        1100,
        CAROL,
        "create",
        "nodes",
        name="n1",
        **inv,
        request={"kind": "Node", "metadata": {"name": "n1"}, "spec": node},
        response=s.obj(1100, INVENTORY_API, "Node", "n1", spec=node),
    )
    rack = {"topology.inventory.miloapis.com/rack": "r7"}
    s.audit(
        1100.4,
        INVENTORY_CONTROLLER,
        "patch",
        "nodes",
        name="n1",
        **inv,
        request={"metadata": {"labels": rack}},
        response=s.obj(1100, INVENTORY_API, "Node", "n1", spec=node, labels=rack),
    )
    _ready_event(s, 1100.5, "Node", "n1", "n1", "Accepted", "")


def _ready_status(s: Story, offset: float, reason: str, message: str) -> Json:
    """An inventory object's ``status``: its Ready condition as the controller sets it."""
    ready = reason == "Accepted"
    condition = {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": reason,
        "message": message or "All references resolved",
        "observedGeneration": 1,
        "lastTransitionTime": seconds(s.at(offset)),
    }
    return {"observedGeneration": 1, "conditions": [condition]}


def _ready_event(
    s: Story, offset: float, kind: str, name: str, display: str, reason: str, message: str
) -> None:
    ready = reason == "Accepted"
    state = "ready" if ready else "not_ready"
    annotations = {
        "inventory.miloapis.com/event-type": f"inventory.{kind.lower()}.{state}",
        "inventory.miloapis.com/observed-generation": "1",
        "inventory.miloapis.com/resource-kind": kind,
        "inventory.miloapis.com/resource-name": name,
        "inventory.miloapis.com/display-name": display,
        "inventory.miloapis.com/condition-reason": reason,
    }
    s.event(
        offset,
        reason="Ready" if ready else "NotReady",
        type="Normal" if ready else "Warning",
        note=message or f"{kind} is ready",
        controller="inventory.miloapis.com/inventory-controller",
        instance="inventory-controller-manager-6d5c9b7f8-x2k4p",
        namespace=EVENT_NAMESPACE,
        regarding={
            "apiVersion": INVENTORY_API,
            "kind": kind,
            "name": name,
            "uid": s.uid(f"{kind}//{name}"),
        },
        annotations=annotations,
    )


def node_flap_and_cleanup(s: Story) -> None:
    """worker-3 goes NotReady and back; Alice cordons it, execs into web, deletes the old worker."""
    node = s.ref("v1", "Node", "worker-3")
    s.event(
        1200,
        reason="NodeNotReady",
        type="Warning",
        controller="node-controller",
        note="Node worker-3 status is now: NodeNotReady",
        regarding=node,
    )
    s.status_patch(1230, kubelet("worker-3"), "nodes", "worker-3", "", "", "v1")
    s.event(
        1260,
        reason="NodeReady",
        controller="kubelet",
        instance="worker-3",
        note="Node worker-3 status is now: NodeReady",
        regarding=node,
    )
    s.audit(
        1380,
        ALICE,
        "patch",
        "nodes",
        name="worker-3",
        request={"spec": {"unschedulable": True}},
        response=s.obj(1380, "v1", "Node", "worker-3", spec={"unschedulable": True}),
    )
    pod = next(
        r.payload["objectRef"]["name"]
        for r in s.records
        if r.kind == "audit"
        and r.payload["verb"] == "create"
        and r.payload["objectRef"]["resource"] == "pods"
        and r.payload["objectRef"].get("name", "").startswith(WEB_RS)
    )
    s.audit(
        1500,
        ALICE,
        "create",
        "pods",
        name=pod,
        namespace=NS,
        subresource="exec",
        query="command=sh&container=app&stdin=true&stdout=true&tty=true",
    )
    s.audit(1620, ALICE, "get", "pods", name=pod, namespace=NS, subresource="log", level="Metadata")
    s.audit(
        1700,
        ALICE,
        "delete",
        "deployments",
        name="worker",
        namespace=NS,
        group="apps",
        response=s.obj(
            1700, "apps/v1", "Deployment", "worker", NS, spec=deployment(1, FIXED_IMAGE, "worker")
        ),
    )
    s.audit(
        1700.5,
        controller("generic-garbage-collector"),
        "delete",
        "replicasets",
        name=WORKER_RS,
        namespace=NS,
        group="apps",
    )


SCENES: list[Callable[[Story], None]] = [circuit_before_provider, node_flap_and_cleanup]
