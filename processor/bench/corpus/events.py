"""Kubernetes Events (``events.k8s.io/v1`` and core ``v1``), including inventory Ready/NotReady."""

from __future__ import annotations

from processor.bench.corpus.base import GenBase
from processor.bench.corpus.vocab import INVENTORY_GROUP, KINDS, NODES, REGISTRY, Json


class EventGen(GenBase):
    """Builds Kubernetes Event records."""

    def event(self) -> Json:
        rng = self.rng
        now = self.tick()
        if rng.random() < 0.25:
            kind = rng.choice([k for k in KINDS if k.group == INVENTORY_GROUP])
            ident = self.ident(kind)
            ready = rng.random() < 0.6
            reason = "Ready" if ready else "NotReady"
            note = (
                f"{kind.kind} {ident.name} is ready"
                if ready
                else f"{kind.kind} {ident.name} is not ready: health probe failed"
            )
            controller, instance = (
                "inventory.miloapis.com/inventory-controller",
                "inventory-controller-0",
            )
            action = "Reconcile"
            event_type = f"inventory.{kind.kind.lower()}.{'ready' if ready else 'not_ready'}"
            prefix = "inventory.miloapis.com/"
            extra = {  # what the inventory controllers annotate (docs/design.md#inventory-6)
                prefix + "event-type": event_type,
                prefix + "observed-generation": "1",
                prefix + "resource-kind": kind.kind,
                prefix + "resource-name": ident.name,
                prefix + "display-name": ident.name,
                prefix + "condition-reason": "Ready" if ready else "HealthProbeFailed",
            }
            ev_type = "Normal" if ready else "Warning"
            field_path = ""
        else:
            kind_name, reason, note, controller, action, field_path = self.workload_event()
            kind = next(k for k in KINDS if k.kind == kind_name and k.group in ("", "apps"))
            ident = self.ident(kind)
            instance = (
                rng.choice(NODES) if controller == "kubelet" else f"{controller}-{self.hex_id(5)}"
            )
            ev_type = (
                "Warning" if reason in ("BackOff", "Unhealthy", "FailedScheduling") else "Normal"
            )
            extra = {}
            note = note.format(name=ident.name, app=ident.app, node=rng.choice(NODES))
        regarding: Json = {
            "kind": kind.kind,
            "name": ident.name,
            "uid": ident.uid,
            "apiVersion": kind.api_version,
            "resourceVersion": str(self.rv),
        }
        if ident.namespace:
            regarding["namespace"] = ident.namespace
        if field_path:
            regarding["fieldPath"] = field_path.format(app=ident.app)
        ev_ns = ident.namespace or "default"
        meta: Json = {
            "name": f"{ident.name}.{rng.getrandbits(64):016x}",
            "namespace": ev_ns,
            "uid": self.uid(),
            "resourceVersion": self.next_rv(),
            "creationTimestamp": self.ts_s(now),
        }
        annotations = dict(extra)
        if kind.group == INVENTORY_GROUP or rng.random() < 0.5:
            annotations["platform.miloapis.com/scope.type"] = rng.choice(
                ("Project", "Organization")
            )
            annotations["platform.miloapis.com/scope.name"] = rng.choice(
                ("project-a1b2c3", "acme-corp")
            )
        if annotations:
            meta["annotations"] = annotations
        # the inventory controllers record events.k8s.io/v1 Events (docs/design.md#inventory-6)
        if rng.random() < 0.5 or kind.group == INVENTORY_GROUP:
            return {
                "kind": "Event",
                "apiVersion": "events.k8s.io/v1",
                "metadata": meta,
                "eventTime": self.ts(now),
                "reportingController": controller,
                "reportingInstance": instance,
                "action": action,
                "reason": reason,
                "regarding": regarding,
                "note": note,
                "type": ev_type,
            }
        count = rng.choice((1, 1, 1, 2, 5, 17))
        return {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": meta,
            "involvedObject": regarding,
            "reason": reason,
            "message": note,
            "source": {"component": controller, "host": instance}
            if controller == "kubelet"
            else {"component": controller},
            "firstTimestamp": self.ts_s(now - (count - 1) * 30_000_000),
            "lastTimestamp": self.ts_s(now),
            "count": count,
            "type": ev_type,
            "eventTime": None,
            "reportingComponent": controller,
            "reportingInstance": instance,
        }

    def workload_event(self) -> tuple[str, str, str, str, str, str]:
        """(Kind, reason, note template, controller, action, fieldPath template)."""
        return self.rng.choice(
            (
                (
                    "Pod",
                    "Scheduled",
                    "Successfully assigned {name} to {node}",
                    "default-scheduler",
                    "Binding",
                    "",
                ),
                (
                    "Pod",
                    "Pulled",
                    'Container image "' + REGISTRY + '/{app}:v1.4.2" already present on machine',
                    "kubelet",
                    "Pulling",
                    "spec.containers{{{app}}}",
                ),
                (
                    "Pod",
                    "Created",
                    "Created container {app}",
                    "kubelet",
                    "Created",
                    "spec.containers{{{app}}}",
                ),
                (
                    "Pod",
                    "Started",
                    "Started container {app}",
                    "kubelet",
                    "Started",
                    "spec.containers{{{app}}}",
                ),
                (
                    "Pod",
                    "Killing",
                    "Stopping container {app}",
                    "kubelet",
                    "Killing",
                    "spec.containers{{{app}}}",
                ),
                (
                    "Pod",
                    "BackOff",
                    "Back-off restarting failed container {app} in pod {name}",
                    "kubelet",
                    "BackOff",
                    "spec.containers{{{app}}}",
                ),
                (
                    "Pod",
                    "Unhealthy",
                    "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    "kubelet",
                    "Probing",
                    "spec.containers{{{app}}}",
                ),
                (
                    "Deployment",
                    "ScalingReplicaSet",
                    "Scaled up replica set {name}-7d9f8b6c5 to 3",
                    "deployment-controller",
                    "Scaling",
                    "",
                ),
                (
                    "ReplicaSet",
                    "SuccessfulCreate",
                    "Created pod: {name}-x2k4p",
                    "replicaset-controller",
                    "Create",
                    "",
                ),
            )
        )
