"""Audit event assembly: verb, user, request URI, stage, response status and annotations."""

from __future__ import annotations

from processor.bench.corpus.bodies import BodyGen
from processor.bench.corpus.vocab import (
    CONTROLLERS,
    HUMAN_AGENTS,
    HUMANS,
    INVENTORY_GROUP,
    KIND_CUM,
    KINDS,
    KUBELET_AGENT,
    NODES,
    READ_VERBS,
    SERVICE_ACCOUNTS,
    VERBS,
    WRITE_VERBS,
    Ident,
    Json,
    Kind,
    stable_uid,
)


class AuditGen(BodyGen):
    """Builds ``audit.k8s.io/v1`` ``Event`` records."""

    # users -------------------------------------------------------------------------------------

    def user(self, kind: Kind, verb: str, sub: str, ident: Ident | None) -> tuple[Json, str, str]:
        """(user, userAgent, sourceIP)."""
        rng = self.rng
        node_ip = self.host_ip()
        if kind.resource == "leases" and ident is not None and ident.namespace == "kube-node-lease":
            return (
                self.node_user(ident.name),
                KUBELET_AGENT,
                node_ip,
            )
        if (kind.resource in ("nodes", "pods") and sub == "status") or (
            kind.resource == "nodes" and verb in READ_VERBS and rng.random() < 0.5
        ):
            return (
                self.node_user(rng.choice(NODES)),
                KUBELET_AGENT,
                node_ip,
            )
        r = rng.random()
        mix = self.mix
        human_share = (
            mix.human_write_share if verb in WRITE_VERBS and sub == "" else mix.human_other_share
        )
        if kind.resource == "leases" or r >= human_share + 0.5:
            name, agent = rng.choice(CONTROLLERS)
            groups = ["system:authenticated"]
            return {"username": name, "groups": groups}, agent, "127.0.0.1"
        if r < human_share:
            name, extra_groups = rng.choice(HUMANS)
            user: Json = {
                "username": name,
                "uid": stable_uid(name),
                "groups": [*extra_groups, "system:authenticated"],
            }
            if rng.random() < 0.6:
                user["extra"] = {
                    "iam.miloapis.com/parent-api-group": ["resourcemanager.miloapis.com"],
                    "iam.miloapis.com/parent-type": [rng.choice(("Project", "Organization"))],
                    "iam.miloapis.com/parent-name": [rng.choice(("project-a1b2c3", "acme-corp"))],
                }
            ip = f"{rng.choice(('198.51', '203.0'))}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            return user, rng.choice(HUMAN_AGENTS), ip
        if kind.group == INVENTORY_GROUP:
            ns, sa, agent = SERVICE_ACCOUNTS[3]
        else:
            ns, sa, agent = rng.choice(SERVICE_ACCOUNTS)
        pod = f"{sa}-{self.hex_id(10)}-{self.hex_id(5)}"
        user = {
            "username": f"system:serviceaccount:{ns}:{sa}",
            "uid": stable_uid(ns + sa),
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns}",
                "system:authenticated",
            ],
            "extra": {
                "authentication.kubernetes.io/credential-id": [f"JTI={self.uid()}"],
                "authentication.kubernetes.io/node-name": [rng.choice(NODES)],
                "authentication.kubernetes.io/node-uid": [self.uid()],
                "authentication.kubernetes.io/pod-name": [pod],
                "authentication.kubernetes.io/pod-uid": [self.uid()],
            },
        }
        return user, agent, self.pod_ip()

    def node_user(self, node: str) -> Json:
        return {
            "username": f"system:node:{node}",
            "groups": ["system:nodes", "system:authenticated"],
        }

    # audit events ------------------------------------------------------------------------------

    def pick_verb(self, kind: Kind) -> tuple[str, str]:
        rng = self.rng
        if kind.resource == "leases":
            # kubelets and leader elections renew by update; gets only on start-up or conflict
            return ("update", "") if rng.random() < 0.97 else ("get", "")
        verb = rng.choices(VERBS, cum_weights=self.mix.verb_cum)[0]
        sub = ""
        if verb in ("update", "patch"):
            x = rng.random()
            if kind.has_status and x < 0.35:
                sub = "status"
            elif kind.scale and x < 0.45:
                sub = "scale"
        return verb, sub

    def uri(self, kind: Kind, verb: str, ns: str, name: str, sub: str) -> str:
        base = f"/apis/{kind.group}/{kind.version}" if kind.group else "/api/v1"
        if ns:
            base += f"/namespaces/{ns}"
        base += f"/{kind.resource}"
        if verb == "list":
            return base + "?limit=500"
        if verb == "watch":
            rv = self.rv - self.rng.randint(100, 5000)
            return (
                f"{base}?allowWatchBookmarks=true&resourceVersion={rv}"
                f"&timeout=7m{self.rng.randint(0, 59)}s"
                f"&timeoutSeconds={self.rng.randint(300, 600)}&watch=true"
            )
        if verb == "create":
            return base
        path = f"{base}/{name}"
        return f"{path}/{sub}" if sub else path

    def audit(self) -> Json:
        rng = self.rng
        kind = rng.choices(KINDS, cum_weights=KIND_CUM)[0]
        verb, sub = self.pick_verb(kind)
        ident = self.ident(kind)
        if verb == "create":
            new = self.new_ident(kind)
            new.generation = 1
            self.replace_ident(kind, ident, new)
            ident = new
        elif verb == "delete":
            self.replace_ident(kind, ident, self.new_ident(kind))
        ns = ident.namespace
        if verb in ("list", "watch") and kind.namespaced and rng.random() < 0.3:
            ns = ""  # cluster-wide list/watch
        named = verb not in ("list", "watch")
        user, agent, ip = self.user(kind, verb, sub, ident)
        uri = self.uri(kind, verb, ns, ident.name, sub)

        dry_run = verb in WRITE_VERBS and user["username"].endswith(".com") and rng.random() < 0.12
        params = []
        if dry_run:
            params.append("dryRun=All")
        if verb in ("create", "update", "patch") and user["username"] not in ("system:apiserver",):
            if verb == "patch" and rng.random() < 0.3:
                params.append("fieldManager=kubectl&force=true")
            elif "kubectl" in agent:
                params.append(
                    f"fieldManager=kubectl-{rng.choice(('edit', 'client-side-apply', 'scale'))}"
                )
            if rng.random() < 0.5:
                params.append("fieldValidation=Strict")
        if params:
            uri += ("&" if "?" in uri else "?") + "&".join(params)

        level = "Metadata" if rng.random() < 0.12 else "RequestResponse"
        if kind.resource == "secrets" and rng.random() < 0.8:
            level = "Metadata"  # real policies keep secret bodies out of the log
        stage = "ResponseComplete"
        x = rng.random()
        if verb == "watch":
            stage = "ResponseStarted" if x < 0.5 else "ResponseComplete"
        elif x < (0.15 if verb in ("create", "update") and kind.resource != "leases" else 0.01):
            stage = "RequestReceived"

        code = {"create": 201}.get(verb, 200)
        if rng.random() < 0.05 and verb != "watch":
            code = self.failure_code(verb)

        start = self.tick()
        latency = int(rng.lognormvariate(8.3, 1.0))  # ~4 ms median, long tail
        if verb == "watch" and stage == "ResponseComplete":
            latency = rng.randint(300, 600) * 1_000_000
        rec: Json = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": self.uid(),
            "stage": stage,
            "requestURI": uri,
            "verb": verb,
            "user": user,
            "sourceIPs": [ip],
            "userAgent": agent,
        }
        object_ref: Json = {"resource": kind.resource}
        if ns:
            object_ref["namespace"] = ns
        if named:
            object_ref["name"] = ident.name
        if kind.group:
            object_ref["apiGroup"] = kind.group
        object_ref["apiVersion"] = kind.version
        if sub:
            object_ref["subresource"] = sub
        rec["objectRef"] = object_ref
        if stage != "RequestReceived":
            rec["responseStatus"] = self.response_status(kind, ident, code, verb)
        if rng.random() < 0.02:
            target = rng.randint(10_000, 40_000)
        else:
            target = int(rng.triangular(2300, 7600, 3600))
        if level == "RequestResponse":
            self.bodies(rec, kind, ident, verb, sub, code, stage, dry_run, target)
        rec["requestReceivedTimestamp"] = self.ts(start)
        rec["stageTimestamp"] = self.ts(start if stage == "RequestReceived" else start + latency)
        rec["annotations"] = self.audit_annotations(kind, user, code, latency)
        if level == "RequestResponse" and verb != "watch" and code < 400:
            self.pad(kind, rec, target)
        return rec

    def failure_code(self, verb: str) -> int:
        choices = {
            "get": (404, 403, 500),
            "list": (403, 500),
            "create": (409, 422, 403),
            "update": (409, 422, 404),
            "patch": (422, 404, 409),
            "delete": (404, 403),
        }[verb]
        return self.rng.choice(choices)

    def response_status(self, kind: Kind, ident: Ident, code: int, verb: str) -> Json:
        if code < 400:
            return {"metadata": {}, "code": code}
        status = self.failure_status(kind, ident, code, verb)
        del status["kind"], status["apiVersion"]
        return status

    def audit_annotations(self, kind: Kind, user: Json, code: int, latency_us: int) -> Json:
        name = user["username"]
        if code == 403:
            out = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
        else:
            binding = (
                "system:controller:" + name.rsplit(":", 1)[-1]
                if name.startswith("system:")
                else "edit"
            )
            out = {
                "authorization.k8s.io/decision": "allow",
                "authorization.k8s.io/reason": (
                    f'RBAC: allowed by ClusterRoleBinding "{binding}" of ClusterRole "{binding}" '
                    f'to User "{name}"'
                ),
            }
        if kind.resource == "pods":
            out["pod-security.kubernetes.io/enforce-policy"] = "restricted:latest"
        if latency_us > 500_000:
            ms = latency_us / 1000
            out["apiserver.latency.k8s.io/etcd"] = f"{ms * 0.6:.6f}ms"
            out["apiserver.latency.k8s.io/serialize-response-object"] = f"{ms * 0.1:.6f}ms"
            out["apiserver.latency.k8s.io/response-write"] = f"{ms * 0.05:.6f}ms"
            out["apiserver.latency.k8s.io/total"] = f"{ms:.6f}ms"
        return out
