"""Who acts in the demo scenario: three people, the control plane, kubelets and controllers."""

from __future__ import annotations

from processor.demo.records import User

_K8S = "v1.31.2 (linux/amd64) kubernetes/5864a46"
_KCM = f"kube-controller-manager/{_K8S}"
_HUMAN_GROUPS = ("system:authenticated",)

ALICE = User(
    "alice",
    ("platform-team", *_HUMAN_GROUPS),
    uid="5b2f8a0c-1d3e-4c6a-9e71-0a4f9d2c1b11",
    agent=f"kubectl/{_K8S}",
    ip="203.0.113.24",
)
BOB = User(
    "bob",
    ("shop-developers", *_HUMAN_GROUPS),
    uid="c4e1d7b2-8a90-4f3e-b5c6-7d2e9f1a0b22",
    agent=f"kubectl/{_K8S}",
    ip="203.0.113.57",
)
CAROL = User(
    "carol",
    ("infra-team", *_HUMAN_GROUPS),
    uid="e9a7c3d1-2b4f-4a8e-9c0d-1f6b3e5a7c33",
    agent="datumctl/v0.9.1 (linux/amd64)",
    ip="198.51.100.12",
)
SCHEDULER = User("system:kube-scheduler", agent=f"kube-scheduler/{_K8S}/scheduler", ip="10.0.0.10")
NODE_IPS = {"worker-1": "10.0.1.11", "worker-2": "10.0.1.12", "worker-3": "10.0.1.13"}


def kubelet(node: str) -> User:
    """The kubelet of ``node`` (``system:node:<node>``)."""
    return User(
        f"system:node:{node}",
        ("system:nodes", "system:authenticated"),
        agent=f"kubelet/{_K8S}",
        ip=NODE_IPS.get(node, "10.0.1.10"),
    )


def controller(name: str) -> User:
    """A kube-controller-manager controller's service account (``kube-system``)."""
    return service_account("kube-system", name, f"{_KCM}/{name}", "10.0.0.10")


def service_account(namespace: str, name: str, agent: str, ip: str) -> User:
    """A service account user (``system:serviceaccount:<ns>:<name>``)."""
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        uid=f"sa-{namespace}-{name}",
        agent=agent,
        ip=ip,
    )


INVENTORY_CONTROLLER = service_account(
    "inventory-system", "inventory-controller-manager", "manager/v0.4.0 (linux/amd64)", "10.0.2.40"
)
CI_DEPLOYER = service_account(
    "ci", "deployer", "argocd-application-controller/v2.12.3", "10.0.2.51"
)
