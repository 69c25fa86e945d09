"""Whole objects (metadata, ``managedFields``, last-applied configuration) and their padding."""

from __future__ import annotations

from typing import Any

import orjson

from processor.bench.corpus.specs import SpecGen
from processor.bench.corpus.vocab import (
    APPS,
    INVENTORY_GROUP,
    POD_TEMPLATED,
    REGISTRY,
    Ident,
    Json,
    Kind,
    stable_uid,
)


class ObjectGen(SpecGen):
    """Builds full objects as the apiserver returns them, padded to a target size."""

    def fields_tree(self, value: Any, top: bool = False) -> Json:
        """A ``fieldsV1`` tree of a JSON value (as the apiserver's field manager builds it)."""
        if type(value) is dict:
            tree: Json = {} if top else {".": {}}
            for k, v in value.items():
                tree[f"f:{k}"] = self.fields_tree(v)
            return tree
        if type(value) is list and value and all(type(v) is dict and "name" in v for v in value):
            return {f'k:{{"name":"{v["name"]}"}}': self.fields_tree(v) for v in value}
        return {}

    def managed_entry(self, manager: str, api_version: str, fields: Json, sub: str = "") -> Json:
        entry = {
            "manager": manager,
            "operation": "Apply" if manager == "kubectl" else "Update",
            "apiVersion": api_version,
            "time": self.past(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        if sub:
            entry["subresource"] = sub
        return entry

    def object(self, kind: Kind, ident: Ident, *, server: bool = True) -> Json:
        """A full object; ``server=False`` leaves out what the apiserver sets (a create request)."""
        rng = self.rng
        meta: Json = {"name": ident.name}
        if ident.namespace:
            meta["namespace"] = ident.namespace
        if server:
            meta["uid"] = ident.uid
            meta["resourceVersion"] = str(self.rv)
            if kind.resource not in ("leases", "configmaps", "secrets", "namespaces"):
                meta["generation"] = ident.generation
            meta["creationTimestamp"] = ident.created
        meta["labels"] = dict(ident.labels)
        annotations: Json = {}
        if kind.resource == "deployments":
            annotations["deployment.kubernetes.io/revision"] = str(rng.randint(1, 40))
        if kind.resource == "pods":
            annotations["kubectl.kubernetes.io/restartedAt"] = ident.created
        if kind.resource == "leases" and ident.namespace == "kube-node-lease":
            meta["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "Node", "name": ident.name, "uid": ident.uid}
            ]
        elif kind.resource in ("pods", "replicasets"):
            owner = "ReplicaSet" if kind.resource == "pods" else "Deployment"
            owner_name = ident.name.rsplit("-", 1)[0]
            meta["ownerReferences"] = [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner,
                    "name": owner_name,
                    "uid": stable_uid(owner_name),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        if annotations:
            meta["annotations"] = annotations
        obj: Json = {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": meta}
        body_field, body, status = self.spec_status(kind, ident)
        if kind.resource == "secrets":
            obj["type"] = "Opaque"
        if body is not None:
            obj[body_field] = body
        if kind.resource == "roles":
            pass
        elif kind.resource == "rolebindings":
            obj["roleRef"] = {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": ident.name,
            }
        applied = rng.random() < 0.45 and kind.resource not in ("leases", "pods", "replicasets")
        if applied:
            last: Json = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": dict(meta)}
            last["metadata"].pop("uid", None)
            last["metadata"].pop("resourceVersion", None)
            last["metadata"].pop("generation", None)
            last["metadata"].pop("creationTimestamp", None)
            last["metadata"].pop("ownerReferences", None)
            if body is not None:
                last[body_field] = body
            annotations["kubectl.kubernetes.io/last-applied-configuration"] = (
                orjson.dumps(last).decode() + "\n"
            )
            meta["annotations"] = annotations
        if server and rng.random() < 0.9:
            spec_part = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
            spec_part["metadata"] = {
                k: v for k, v in meta.items() if k in ("labels", "annotations", "ownerReferences")
            }
            manager = self.manager(kind, applied)
            managed = [
                self.managed_entry(manager, kind.api_version, self.fields_tree(spec_part, True))
            ]
            if status is not None and kind.has_status:
                status_manager = (
                    "kubelet" if kind.resource in ("pods", "nodes") else self.status_manager(kind)
                )
                managed.append(
                    self.managed_entry(
                        status_manager,
                        kind.api_version,
                        {"f:status": self.fields_tree(status)},
                        "status",
                    )
                )
            meta["managedFields"] = managed
        if server and status is not None:
            obj["status"] = status
        return obj

    def manager(self, kind: Kind, applied: bool) -> str:
        if applied:
            return "kubectl-client-side-apply"
        if kind.resource == "leases":
            return "kubelet" if self.rng.random() < 0.7 else "kube-controller-manager"
        if kind.group == INVENTORY_GROUP:
            return self.rng.choice(("datumctl", "inventory-controller", "kubectl"))
        return self.rng.choice(("kubectl", "kube-controller-manager", "helm", "argocd-controller"))

    def status_manager(self, kind: Kind) -> str:
        if kind.group == INVENTORY_GROUP:
            return "inventory-controller"
        return "kube-controller-manager"

    # padding -----------------------------------------------------------------------------------

    def pad_entries(self, kind: Kind, nbytes: int) -> list[Any]:
        rng = self.rng
        out: list[Any] = []
        size = 0
        i = 0
        while size < nbytes:
            i += 1
            p = kind.pad
            if p == "env":
                e: Any = {
                    "name": f"FEATURE_{self.hex_id(6).upper()}_{i}",
                    "value": rng.choice(
                        ("true", "false", "https://config.example.com/v2/" + self.hex_id(24))
                    ),
                }
            elif p == "data":
                e = (
                    f"settings-{i}.yaml",
                    "\n".join(
                        f"{self.hex_id(8)}: {self.hex_id(rng.randint(8, 40))}" for _ in range(12)
                    ),
                )
            elif p == "images":
                img = f"{REGISTRY}/{rng.choice(APPS)}"
                e = {
                    "names": [f"{img}@sha256:{rng.getrandbits(256):064x}", f"{img}:v1.{i}.0"],
                    "sizeBytes": rng.randint(5_000_000, 900_000_000),
                }
            elif p == "attrs":
                e = (f"attribute-{self.hex_id(5)}", self.hex_id(rng.randint(16, 64)))
            elif p == "rules":
                e = {
                    "apiGroups": [rng.choice(("", "apps", "batch"))],
                    "resources": [rng.choice(("pods", "deployments", "jobs", "services"))],
                    "verbs": ["get", "list", "watch", "create", "update", "patch"],
                }
            elif p == "subjects":
                e = {
                    "kind": "User",
                    "apiGroup": "rbac.authorization.k8s.io",
                    "name": f"{self.hex_id(6)}@example.com",
                }
            else:  # annotations
                e = (f"config.acme.io/{self.hex_id(6)}-{i}", self.hex_id(rng.randint(20, 80)))
            size += len(orjson.dumps(e)) + 4
            out.append(e)
        return out

    def apply_pad(self, kind: Kind, obj: Json, entries: list[Any]) -> None:
        p = kind.pad
        if p == "env":
            spec = obj.get("spec")
            if kind.resource == "cronjobs" and spec:
                spec = spec["jobTemplate"]["spec"]["template"]["spec"]
            elif kind.resource in POD_TEMPLATED and spec:
                spec = spec["template"]["spec"]
            if spec and "containers" in spec:
                spec["containers"][0].setdefault("env", []).extend(entries)
        elif p == "data":
            obj.setdefault("data", {}).update(dict(entries))
        elif p == "images":
            status = obj.get("status")
            if status is not None and "images" in status:
                status["images"].extend(entries)
        elif p == "attrs":
            spec = obj.get("spec")
            if spec is not None:
                spec.setdefault("attributes", {}).update(dict(entries))
        elif p in ("rules", "subjects"):
            obj.setdefault(p, []).extend(entries)
        elif p == "annotations":
            obj["metadata"].setdefault("annotations", {}).update(dict(entries))

    def pad(self, kind: Kind, rec: Json, target: int) -> None:
        if kind.pad == "none":
            return
        bodies = [
            b
            for b in (rec.get("requestObject"), rec.get("responseObject"))
            if type(b) is dict and b.get("kind") == kind.kind and "metadata" in b
        ]
        if not bodies:
            return
        deficit = target - len(orjson.dumps(rec))
        if deficit < 200:
            return
        entries = self.pad_entries(kind, deficit // len(bodies))
        for i, body in enumerate(bodies):
            self.apply_pad(kind, body, entries if i == 0 else orjson.loads(orjson.dumps(entries)))
