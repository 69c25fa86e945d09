"""Vocabulary of the benchmark corpus: namespaces, apps, users, API kinds and object identities.

Everything here is constant data (plus the :class:`Ident` record and :func:`stable_uid`); the
generator modules draw from it with the corpus' seeded ``random.Random``.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Json = dict[str, Any]

#: Fixed origin of the corpus clock (UTC, naive on purpose: formatted with a literal ``Z``).
BASE_TIME = datetime(2025, 1, 15, 9, 0, 0)

# --- vocabulary --------------------------------------------------------------------------------

NAMESPACES = (
    "default",
    "kube-system",
    "monitoring",
    "ingress-nginx",
    "cert-manager",
    "milo-system",
    "project-a1b2c3",
    "project-d4e5f6",
    "payments",
    "web",
)
APPS = (
    "api-gateway",
    "billing-worker",
    "checkout",
    "frontend",
    "inventory-sync",
    "ledger",
    "notifications",
    "orders",
    "redis",
    "search-indexer",
    "postgres",
    "web",
)
NODES = tuple(f"n{i}" for i in range(1, 9))
REGIONS = ("us-east-1", "us-west-2", "eu-central-1", "ap-southeast-1")
SITES = ("dfw-01", "iad-02", "fra-01", "sin-01", "ord-03", "lhr-02")
#: hex digit -> the consonant/digit alphabet of generated name suffixes (pod-template-hash style)
HEX_TO_NAME = str.maketrans("0123456789abcdef", "bcdfghjklmnpqrs2")
REGISTRY = "registry.example.com/platform"

HUMANS = (
    ("alice@example.com", ("org:acme-admins",)),
    ("bob@example.com", ("org:acme-developers",)),
    ("carol@example.org", ("org:globex-sre", "org:globex-oncall")),
    ("dave@example.net", ("org:initech-viewers",)),
)
HUMAN_AGENTS = (
    "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
    "kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "datumctl/v0.4.2 (linux/amd64)",
)
SERVICE_ACCOUNTS = (
    ("argocd", "argocd-application-controller", "argocd-application-controller/v2.12.3"),
    ("flux-system", "kustomize-controller", "kustomize-controller/v1.4.0"),
    ("cert-manager", "cert-manager", "cert-manager-controller/v1.15.3"),
    ("milo-system", "inventory-controller", "inventory-controller/v0.9.1"),
    ("monitoring", "prometheus-operator", "prometheus-operator/v0.76.0"),
    ("kube-system", "deployment-controller", "kube-controller-manager/v1.30.2"),
    ("kube-system", "replicaset-controller", "kube-controller-manager/v1.30.2"),
    ("kube-system", "job-controller", "kube-controller-manager/v1.30.2"),
)
CONTROLLERS = (
    (
        "system:kube-controller-manager",
        "kube-controller-manager/v1.30.2 (linux/amd64) leader-election",
    ),
    ("system:kube-scheduler", "kube-scheduler/v1.30.2 (linux/amd64) kubernetes/3968350/scheduler"),
    ("system:apiserver", "kube-apiserver/v1.30.2 (linux/amd64) kubernetes/3968350"),
)

# --- kinds -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Kind:
    """An API resource kind, its weight in the corpus and where padding goes."""

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    weight: float
    pad: str  # where filler goes: env, data, images, attrs, rules, subjects, annotations, none
    scale: bool = False
    has_status: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


INVENTORY_GROUP = "inventory.miloapis.com"
KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "pods", "Pod", True, 14, "env"),
    Kind("", "v1", "configmaps", "ConfigMap", True, 7, "data", has_status=False),
    Kind("", "v1", "secrets", "Secret", True, 5, "data", has_status=False),
    Kind("", "v1", "services", "Service", True, 3, "annotations"),
    Kind("", "v1", "namespaces", "Namespace", False, 2, "annotations"),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", True, 2, "annotations", has_status=False),
    Kind("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, 2, "annotations"),
    Kind("", "v1", "nodes", "Node", False, 5, "images"),
    Kind("apps", "v1", "deployments", "Deployment", True, 6, "env", scale=True),
    Kind("apps", "v1", "statefulsets", "StatefulSet", True, 2, "env", scale=True),
    Kind("apps", "v1", "daemonsets", "DaemonSet", True, 2, "env"),
    Kind("apps", "v1", "replicasets", "ReplicaSet", True, 4, "env", scale=True),
    Kind("batch", "v1", "jobs", "Job", True, 2, "env"),
    Kind("batch", "v1", "cronjobs", "CronJob", True, 1, "env"),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress", True, 2, "annotations"),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role", True, 1, "rules", has_status=False),
    Kind(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        True,
        1,
        "subjects",
        has_status=False,
    ),
    Kind("coordination.k8s.io", "v1", "leases", "Lease", True, 22, "none", has_status=False),
    Kind(INVENTORY_GROUP, "v1alpha1", "regions", "Region", False, 0.6, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "sites", "Site", False, 0.8, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "clusters", "Cluster", False, 0.8, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "nodes", "Node", False, 1.5, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "networkdevices", "NetworkDevice", False, 1.2, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "links", "Link", False, 1.0, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "providers", "Provider", False, 0.4, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "racks", "Rack", False, 0.8, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "ports", "Port", False, 1.5, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "cables", "Cable", False, 1.0, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "circuits", "Circuit", False, 0.6, "attrs"),
    Kind(INVENTORY_GROUP, "v1alpha1", "virtualmachines", "VirtualMachine", False, 1.2, "attrs"),
)
KIND_CUM = tuple(itertools.accumulate(k.weight for k in KINDS))
POD_TEMPLATED = frozenset({"deployments", "statefulsets", "daemonsets", "replicasets", "jobs"})

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
VERB_CUM = tuple(itertools.accumulate((38, 16, 2, 12, 12, 13, 7)))


@dataclass(frozen=True, slots=True)
class Mix:
    """How a corpus spreads its records over verbs, actors and record types."""

    #: cumulative weights of :data:`VERBS`
    verb_cum: tuple[float, ...]
    #: the share of people among the actors of main-resource writes (create/update/patch/delete
    #: without a subresource); the rest are controllers and service accounts
    human_write_share: float
    #: the same share for reads and subresource writes
    human_other_share: float
    #: the share of Kubernetes Events among the records
    event_ratio: float


#: ``standard``: a stress mix, write-heavy and with many people writing (about 15% of the records
#: become activities with the bundled policies). ``production``: the workload of
#: ``docs/design.md#perf-workload`` (reads, lease renewals and controllers' writes; with the bundled
#: policies, which leave system writes out, about one record in three hundred becomes an
#: activity: still some thirty times production's share, so that a latency run has activities to
#: time).
MIXES: dict[str, Mix] = {
    "standard": Mix(VERB_CUM, 0.45, 0.12, 0.1),
    "production": Mix(
        tuple(itertools.accumulate((52.0, 18.0, 6.0, 1.0, 14.0, 8.5, 0.5))), 0.01, 0.004, 0.004
    ),
}

NODE_CONDITIONS: tuple[str, ...] = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
KUBELET_AGENT = "kubelet/v1.30.2 (linux/amd64) kubernetes/3968350"

STATUS_REASONS = {
    403: "Forbidden",
    404: "NotFound",
    409: "AlreadyExists",
    422: "Invalid",
    500: "InternalError",
}


@dataclass(slots=True)
class Ident:
    """A stable object identity that recurs across records (as real objects do)."""

    name: str
    namespace: str
    uid: str
    created: str
    app: str
    generation: int = 1
    labels: Json = field(default_factory=dict)


def hash_int(text: str) -> int:
    """A stable 128-bit integer of a string (for uids that must repeat for the same name)."""
    h = 0xCBF29CE484222325
    for ch in text.encode():
        h = ((h ^ ch) * 0x100000001B3) & ((1 << 128) - 1)
    return h


def stable_uid(text: str) -> str:
    """A version-4 style UUID derived from ``text`` (the same text always gives the same uid)."""
    return str(uuid.UUID(int=hash_int(text), version=4))
