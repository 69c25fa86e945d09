"""The generator's state (seeded RNG, clock, resourceVersion) and its pools of object identities."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta

from processor.bench.corpus.vocab import (
    APPS,
    BASE_TIME,
    HEX_TO_NAME,
    INVENTORY_GROUP,
    MIXES,
    NAMESPACES,
    NODES,
    REGIONS,
    SITES,
    Ident,
    Kind,
    Mix,
)


class GenBase:
    """Seeded state shared by every part of the generator."""

    def __init__(self, seed: int, mix: Mix = MIXES["standard"]) -> None:
        self.rng = random.Random(seed)
        self.mix = mix
        self.clock_us = 0
        self.rv = 4_812_345
        self.pools: dict[str, list[Ident]] = {}

    # helpers -----------------------------------------------------------------------------------

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex_id(self, n: int) -> str:
        return format(self.rng.getrandbits(4 * n), f"0{n}x").translate(HEX_TO_NAME)

    def next_rv(self) -> str:
        self.rv += self.rng.randint(1, 40)
        return str(self.rv)

    def ts(self, us: int) -> str:
        return (BASE_TIME + timedelta(microseconds=us)).isoformat(timespec="microseconds") + "Z"

    def ts_s(self, us: int) -> str:
        return (BASE_TIME + timedelta(microseconds=us)).isoformat(timespec="seconds") + "Z"

    def host_ip(self) -> str:
        return f"10.0.{self.rng.randint(0, 3)}.{self.rng.randint(2, 250)}"

    def pod_ip(self) -> str:
        return f"10.244.{self.rng.randint(0, 15)}.{self.rng.randint(2, 250)}"

    def past(self) -> str:
        """A creation time up to 40 days before the current clock."""
        return self.ts_s(self.clock_us - self.rng.randint(60, 40 * 86400) * 1_000_000)

    def tick(self) -> int:
        # about 250 records/s, as an upstream production stream
        self.clock_us += int(self.rng.expovariate(1 / 4000)) + 1
        return self.clock_us

    # identities --------------------------------------------------------------------------------

    def new_ident(self, kind: Kind) -> Ident:
        rng = self.rng
        app = rng.choice(APPS)
        ns = rng.choice(NAMESPACES) if kind.namespaced else ""
        r = kind.resource
        if kind.group == INVENTORY_GROUP:
            name = self.inventory_name(r)
            app = "inventory"
        elif r == "pods":
            name = f"{app}-{self.hex_id(10)}-{self.hex_id(5)}"
        elif r == "replicasets":
            name = f"{app}-{self.hex_id(10)}"
        elif r == "jobs":
            name = f"{app}-migrate-{rng.randint(28900000, 28999999)}"
        elif r == "secrets":
            name = f"{app}-{rng.choice(('tls', 'credentials', 'db-password', 'token'))}"
        elif r == "configmaps":
            name = rng.choice((f"{app}-config", f"{app}-env", "kube-root-ca.crt"))
        elif r == "namespaces":
            name = rng.choice(NAMESPACES)
        elif r == "nodes":
            name = rng.choice(NODES)
        elif r == "leases":
            if rng.random() < 0.7:
                name, ns = rng.choice(NODES), "kube-node-lease"
            else:
                name = rng.choice(
                    ("kube-controller-manager", "kube-scheduler", "cert-manager-controller")
                )
                ns = "kube-system"
        elif r in ("roles", "rolebindings"):
            name = f"{app}-{rng.choice(('reader', 'editor', 'deployer'))}"
        else:
            name = app
        labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "acme-platform"}
        if rng.random() < 0.5:
            labels["app.kubernetes.io/managed-by"] = rng.choice(("Helm", "argocd", "kustomize"))
        if rng.random() < 0.4:
            labels["app.kubernetes.io/version"] = f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.0"
        if r == "pods":
            labels["pod-template-hash"] = name.split("-")[-2]
        return Ident(name, ns, self.uid(), self.past(), app, rng.randint(1, 30), labels)

    def inventory_name(self, resource: str) -> str:
        rng = self.rng
        site = rng.choice(SITES)
        n = rng.randint(1, 48)
        names: dict[str, Callable[[], str]] = {
            "regions": lambda: rng.choice(REGIONS),
            "sites": lambda: site,
            "clusters": lambda: f"{site}-k8s-{n:02d}",
            "nodes": lambda: f"{site}-r{rng.randint(1, 20):02d}-n{n:02d}",
            "networkdevices": lambda: f"{site}-{rng.choice(('leaf', 'spine', 'border'))}-{n:02d}",
            "links": lambda: f"{site}-leaf-{n:02d}-spine-{rng.randint(1, 4):02d}",
            "providers": lambda: rng.choice(("equinix", "zayo", "lumen", "cogent", "aws")),
            "racks": lambda: f"{site}-r{n:02d}",
            "ports": lambda: f"{site}-leaf-{n:02d}-eth1-{rng.randint(1, 64)}",
            "cables": lambda: f"{site}-cbl-{rng.randint(1000, 9999)}",
            "circuits": lambda: f"{site}-{rng.choice(('zayo', 'lumen'))}-{rng.randint(100, 999)}",
            "virtualmachines": lambda: f"vm-{self.hex_id(8)}",
        }
        return names[resource]()

    def ident(self, kind: Kind) -> Ident:
        pool = self.pools.get(kind.resource)
        if pool is None:
            size = 24 if kind.resource == "leases" else 40
            pool = self.pools[kind.resource] = [self.new_ident(kind) for _ in range(size)]
        return self.rng.choice(pool)

    def replace_ident(self, kind: Kind, old: Ident, new: Ident) -> None:
        pool = self.pools[kind.resource]
        for i, ident in enumerate(pool):
            if ident is old:
                pool[i] = new
                return
