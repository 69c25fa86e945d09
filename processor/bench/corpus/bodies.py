"""Audit request and response bodies: objects, patches, ``Scale``, ``Status`` and lists."""

from __future__ import annotations

import orjson

from processor.bench.corpus.objects import ObjectGen
from processor.bench.corpus.vocab import (
    NODE_CONDITIONS,
    POD_TEMPLATED,
    STATUS_REASONS,
    Ident,
    Json,
    Kind,
)


class BodyGen(ObjectGen):
    """Builds ``requestObject``/``responseObject`` for ``RequestResponse`` audit events."""

    def failure_status(self, kind: Kind, ident: Ident, code: int, verb: str) -> Json:
        reason = STATUS_REASONS[code]
        what = f"{kind.resource}.{kind.group}" if kind.group else kind.resource
        if code == 409 and verb != "create":
            reason = "Conflict"
            message = (
                f'Operation cannot be fulfilled on {what} "{ident.name}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
        elif code == 409:
            message = f'{what} "{ident.name}" already exists'
        elif code == 404:
            message = f'{what} "{ident.name}" not found'
        elif code == 403:
            message = (
                f'{what} "{ident.name}" is forbidden: User cannot {verb} '
                f'resource "{kind.resource}" in API group "{kind.group}"'
                + (
                    f' in the namespace "{ident.namespace}"'
                    if ident.namespace
                    else " at the cluster scope"
                )
            )
        elif code == 422:
            message = (
                f'{kind.kind} "{ident.name}" is invalid: metadata.labels: Invalid value: '
                '"-bad-": a valid label must be an empty string or consist of alphanumeric '
                "characters"
            )
        else:
            message = "Internal error occurred: etcdserver: request timed out"
        status: Json = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": {"name": ident.name, "kind": kind.resource},
            "code": code,
        }
        if kind.group:
            status["details"]["group"] = kind.group
        if code == 422:
            status["details"]["causes"] = [
                {
                    "reason": "FieldValueInvalid",
                    "message": 'Invalid value: "-bad-"',
                    "field": "metadata.labels",
                }
            ]
        if code == 500:
            status["details"] = {"retryAfterSeconds": 1}
        return status

    def bodies(
        self,
        rec: Json,
        kind: Kind,
        ident: Ident,
        verb: str,
        sub: str,
        code: int,
        stage: str,
        dry_run: bool,
        target: int,
    ) -> None:
        """Set ``requestObject`` and (on ``ResponseComplete``) ``responseObject`` of ``rec``."""
        req = self.request_body(kind, ident, verb, sub)
        if req is not None:
            rec["requestObject"] = req
        if stage != "ResponseComplete" or verb == "watch":
            return
        if code >= 400:
            resp: Json | None = self.failure_status(kind, ident, code, verb)
        elif verb == "list":
            resp = self.list_body(rec, kind, target)
        else:
            resp = self.success_body(kind, ident, verb, sub, req, dry_run)
        if resp is not None:
            rec["responseObject"] = resp

    def request_body(self, kind: Kind, ident: Ident, verb: str, sub: str) -> Json | None:
        rng = self.rng
        if verb in ("create", "update"):
            if sub == "scale":
                return self.scale(kind, ident, rng.randint(0, 10))
            return self.object(kind, ident, server=verb == "update")
        if verb == "patch":
            return self.patch_doc(kind, ident, sub)
        if verb == "delete" and rng.random() < 0.6:
            return {
                "kind": "DeleteOptions",
                "apiVersion": "meta.k8s.io/__internal",
                "propagationPolicy": rng.choice(("Background", "Foreground")),
            }
        return None

    def success_body(
        self, kind: Kind, ident: Ident, verb: str, sub: str, req: Json | None, dry_run: bool
    ) -> Json | None:
        """The response of a successful get, create, update, patch or delete."""
        rng = self.rng
        if verb == "get":
            return self.object(kind, ident)
        if verb == "delete":
            return self.delete_body(kind, ident)
        if verb not in ("create", "update", "patch"):
            return None
        if sub == "scale":
            replicas = req["spec"]["replicas"] if req and verb != "patch" else rng.randint(0, 10)
            return self.scale(kind, ident, replicas)
        if not dry_run:
            self.next_rv()
            if verb == "update" and sub == "":
                ident.generation += 1
        if verb != "update" or req is None:
            return self.object(kind, ident)
        resp: Json = orjson.loads(orjson.dumps(req))
        resp["metadata"]["resourceVersion"] = str(self.rv)
        return resp

    def delete_body(self, kind: Kind, ident: Ident) -> Json:
        if self.rng.random() < 0.8:
            obj = self.object(kind, ident)
            obj["metadata"]["deletionTimestamp"] = self.ts_s(self.clock_us)
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            return obj
        details = {"name": ident.name, "kind": kind.resource, "uid": ident.uid}
        if kind.group:
            details["group"] = kind.group
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def list_body(self, rec: Json, kind: Kind, target: int) -> Json:
        """A ``<Kind>List`` of pooled objects, grown until the record reaches ``target`` bytes."""
        pool = self.pools[kind.resource]
        items: list[Json] = []
        size = len(orjson.dumps(rec)) + 100
        while not items or (size < target and len(items) < 50):
            item = self.object(kind, self.rng.choice(pool))
            del item["kind"], item["apiVersion"]
            items.append(item)
            size += len(orjson.dumps(item))
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def scale(self, kind: Kind, ident: Ident, replicas: int) -> Json:
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": ident.name,
                "namespace": ident.namespace,
                "uid": ident.uid,
                "resourceVersion": str(self.rv),
                "creationTimestamp": ident.created,
            },
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "selector": f"app.kubernetes.io/name={ident.app}"},
        }

    def patch_doc(self, kind: Kind, ident: Ident, sub: str) -> Json:
        rng = self.rng
        if sub == "scale":
            return {"spec": {"replicas": rng.randint(0, 10)}}
        if sub == "status":
            ready = rng.random() < 0.8
            types = NODE_CONDITIONS if kind.resource == "nodes" else ("Ready",)
            return {
                "metadata": {"uid": ident.uid},
                "status": {
                    "$setElementOrder/conditions": [{"type": t} for t in types],
                    "conditions": self.conditions(types, ready),
                },
            }
        if kind.resource in POD_TEMPLATED or kind.resource == "deployments":
            return {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                "kubectl.kubernetes.io/restartedAt": self.ts_s(self.clock_us)
                            }
                        }
                    }
                }
            }
        return {"metadata": {"labels": {"acme.io/owner": rng.choice(("team-a", "team-b", "sre"))}}}
