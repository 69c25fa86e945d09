"""Resource bodies per kind: ``spec``/``data``/``rules``/``subjects`` and ``status``."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from processor.bench.corpus.base import GenBase
from processor.bench.corpus.vocab import (
    INVENTORY_GROUP,
    NODE_CONDITIONS,
    NODES,
    REGIONS,
    REGISTRY,
    SITES,
    Ident,
    Json,
    Kind,
)


class SpecGen(GenBase):
    """Builds the kind-specific parts of objects."""

    def container(self, app: str) -> Json:
        rng = self.rng
        port = rng.choice((8080, 8443, 9090, 6379, 5432, 3000))
        version = f"v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        container: Json = {
            "name": app,
            "image": f"{REGISTRY}/{app}:{version}",
            "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
            "env": [
                {"name": "LOG_LEVEL", "value": rng.choice(("info", "debug", "warn"))},
                {
                    "name": "POD_NAMESPACE",
                    "valueFrom": {
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}
                    },
                },
            ],
            "resources": {
                "limits": {"cpu": f"{rng.choice((500, 1000, 2000))}m", "memory": "512Mi"},
                "requests": {"cpu": f"{rng.choice((50, 100, 250))}m", "memory": "128Mi"},
            },
            "volumeMounts": [
                {
                    "name": "kube-api-access",
                    "readOnly": True,
                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                }
            ],
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
        if rng.random() < 0.3:
            container["livenessProbe"] = {
                "httpGet": {"path": "/healthz", "port": port, "scheme": "HTTP"},
                "periodSeconds": 10,
                "failureThreshold": 3,
            }
        return container

    def pod_spec(self, app: str, node: str | None = None) -> Json:
        spec: Json = {
            "containers": [self.container(app)],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": app,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "schedulerName": "default-scheduler",
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420}}],
        }
        if node:
            spec["nodeName"] = node
        return spec

    def conditions(self, types: tuple[str, ...], ready: bool) -> list[Json]:
        when = self.past()
        out = []
        for t in types:
            ok = ready or t != "Ready"
            out.append(
                {
                    "type": t,
                    "status": "True" if ok else "False",
                    "lastTransitionTime": when,
                    "reason": t if ok else "ProbeFailed",
                    "message": "" if ok else "health probe failed: connection refused",
                }
            )
        return out

    def spec_status(self, kind: Kind, ident: Ident) -> tuple[str, Any, Any]:
        """(body field name, body, status) for a kind; the field is ``spec`` or ``data``."""
        rng = self.rng
        r, app = kind.resource, ident.app
        spec: Json
        status: Json
        ready = rng.random() < 0.85
        replicas = rng.randint(1, 6)
        selector = {"matchLabels": {"app.kubernetes.io/name": app}}
        template = {
            "metadata": {"labels": {"app.kubernetes.io/name": app}},
            "spec": self.pod_spec(app),
        }
        workload_status: Json = {
            "observedGeneration": ident.generation,
            "replicas": replicas,
            "readyReplicas": replicas if ready else replicas - 1,
            "availableReplicas": replicas if ready else replicas - 1,
        }
        if kind.group == INVENTORY_GROUP:
            status = {
                "observedGeneration": ident.generation,
                "conditions": self.conditions(("Ready",), ready),
            }
            return "spec", self.inventory_spec(r), status
        if r == "pods":
            node = rng.choice(NODES)
            status = {
                "phase": "Running" if ready else rng.choice(("Pending", "Running")),
                "conditions": self.conditions(
                    ("Initialized", "Ready", "ContainersReady", "PodScheduled"), ready
                ),
                "hostIP": self.host_ip(),
                "podIP": self.pod_ip(),
                "startTime": ident.created,
                "qosClass": "Burstable",
                "containerStatuses": [
                    {
                        "name": app,
                        "ready": ready,
                        "restartCount": 0 if ready else rng.randint(1, 12),
                        "image": f"{REGISTRY}/{app}:v1.4.2",
                        "imageID": f"{REGISTRY}/{app}@sha256:{rng.getrandbits(256):064x}",
                        "containerID": f"containerd://{rng.getrandbits(256):064x}",
                        "started": ready,
                    }
                ],
            }
            return "spec", self.pod_spec(app, node), status
        if r == "configmaps":
            return (
                "data",
                {"LOG_LEVEL": "info", "config.yaml": f"server:\n  port: 8080\n  name: {app}\n"},
                None,
            )
        if r == "secrets":
            value = base64.b64encode(rng.randbytes(24)).decode()
            return (
                "data",
                {"password": value, "username": base64.b64encode(app.encode()).decode()},
                None,
            )
        if r == "services":
            spec = {
                "type": rng.choice(("ClusterIP", "ClusterIP", "LoadBalancer")),
                "selector": {"app.kubernetes.io/name": app},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
                "clusterIP": f"10.96.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "sessionAffinity": "None",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
            }
            return "spec", spec, {"loadBalancer": {}}
        if r == "namespaces":
            return "spec", {"finalizers": ["kubernetes"]}, {"phase": "Active"}
        if r == "serviceaccounts":
            return "spec", None, None
        if r == "persistentvolumeclaims":
            spec = {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": f"{rng.choice((1, 10, 50, 100))}Gi"}},
                "storageClassName": "standard-rwo",
                "volumeMode": "Filesystem",
                "volumeName": f"pvc-{ident.uid}",
            }
            return "spec", spec, {"phase": "Bound", "accessModes": ["ReadWriteOnce"]}
        if r == "nodes":
            spec = {
                "podCIDR": f"10.244.{rng.randint(0, 15)}.0/24",
                "providerID": f"metal://{ident.name}",
            }
            status = {
                "capacity": {"cpu": "32", "memory": "131900000Ki", "pods": "110"},
                "allocatable": {"cpu": "31800m", "memory": "129500000Ki", "pods": "110"},
                "conditions": self.conditions(NODE_CONDITIONS, ready),
                "addresses": [
                    {"type": "InternalIP", "address": f"10.0.0.{rng.randint(2, 250)}"},
                    {"type": "Hostname", "address": ident.name},
                ],
                "nodeInfo": {
                    "kubeletVersion": "v1.30.2",
                    "containerRuntimeVersion": "containerd://1.7.20",
                    "osImage": "Ubuntu 24.04.1 LTS",
                    "kernelVersion": "6.8.0-45-generic",
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                },
                "images": [],
            }
            return "spec", spec, status
        if r in ("deployments", "statefulsets", "replicasets"):
            spec = {"replicas": replicas, "selector": selector, "template": template}
            if r == "deployments":
                spec["strategy"] = {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                }
                spec["revisionHistoryLimit"] = 10
                workload_status["conditions"] = self.conditions(("Available", "Progressing"), True)
            elif r == "statefulsets":
                spec["serviceName"] = app
            return "spec", spec, workload_status
        if r == "daemonsets":
            n = len(NODES)
            status = {
                "currentNumberScheduled": n,
                "desiredNumberScheduled": n,
                "numberReady": n if ready else n - 1,
                "observedGeneration": ident.generation,
            }
            return "spec", {"selector": selector, "template": template}, status
        if r == "jobs":
            job_template = dict(template)
            job_template["spec"] = dict(template["spec"], restartPolicy="Never")
            spec = {"backoffLimit": 6, "completions": 1, "parallelism": 1, "template": job_template}
            status = {"startTime": ident.created, "active": 0 if ready else 1}
            if ready:
                status["succeeded"] = 1
            return "spec", spec, status
        if r == "cronjobs":
            spec = {
                "schedule": rng.choice(("*/15 * * * *", "0 3 * * *", "30 */2 * * *")),
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {"spec": {"template": template}},
            }
            return "spec", spec, {"lastScheduleTime": self.past()}
        if r == "ingresses":
            spec = {
                "ingressClassName": "nginx",
                "tls": [{"hosts": [f"{app}.example.com"], "secretName": f"{app}-tls"}],
                "rules": [
                    {
                        "host": f"{app}.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": app, "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ],
            }
            return "spec", spec, {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
        if r == "roles":
            rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
            return "rules", rules, None
        if r == "rolebindings":
            return (
                "subjects",
                [{"kind": "ServiceAccount", "name": app, "namespace": ident.namespace}],
                None,
            )
        if r == "leases":
            holder = (
                ident.name
                if ident.namespace == "kube-node-lease"
                else f"{ident.name}-{self.hex_id(5)}"
            )
            spec = {
                "holderIdentity": holder,
                "leaseDurationSeconds": 40 if ident.namespace == "kube-node-lease" else 15,
                "renewTime": self.ts(self.clock_us),
            }
            if ident.namespace != "kube-node-lease":
                spec["acquireTime"] = self.ts(self.clock_us - 3_600_000_000)
                spec["leaseTransitions"] = rng.randint(0, 9)
            return "spec", spec, None
        raise AssertionError(r)  # pragma: no cover

    def inventory_spec(self, resource: str) -> Json:
        rng = self.rng
        site = rng.choice(SITES)
        specs: dict[str, Callable[[], Json]] = {
            "regions": lambda: {
                "displayName": rng.choice(REGIONS),
                "providerRef": {"name": "aws"},
            },
            "sites": lambda: {
                "regionRef": {"name": rng.choice(REGIONS)},
                "address": {"city": "Dallas", "country": "US", "postalCode": "75207"},
                "coordinates": {"latitude": "32.7767", "longitude": "-96.7970"},
            },
            "clusters": lambda: {
                "siteRef": {"name": site},
                "kubernetesVersion": "v1.30.2",
                "controlPlaneEndpoint": f"https://{site}.k8s.example.net:6443",
            },
            "nodes": lambda: {
                "rackRef": {"name": f"{site}-r{rng.randint(1, 20):02d}"},
                "serialNumber": f"SN{rng.getrandbits(40):010X}",
                "model": rng.choice(("PowerEdge R760", "ProLiant DL380 Gen11")),
                "cpu": {"sockets": 2, "cores": 64},
                "memory": "1024Gi",
            },
            "networkdevices": lambda: {
                "model": rng.choice(("DCS-7280SR3", "QFX5120-48Y", "N9K-C93180YC")),
                "managementIP": f"10.255.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "role": rng.choice(("leaf", "spine", "border")),
                "portCount": 54,
            },
            "links": lambda: {
                "a": {"deviceRef": {"name": f"{site}-leaf-01"}, "port": "Ethernet49/1"},
                "b": {"deviceRef": {"name": f"{site}-spine-01"}, "port": "Ethernet1/1"},
                "speed": "100G",
            },
            "providers": lambda: {
                "displayName": "Zayo Group",
                "type": rng.choice(("transit", "colo")),
            },
            "racks": lambda: {
                "siteRef": {"name": site},
                "units": 48,
                "position": f"A{rng.randint(1, 30)}",
            },
            "ports": lambda: {
                "deviceRef": {"name": f"{site}-leaf-01"},
                "speed": rng.choice(("10G", "25G", "100G")),
                "mtu": 9214,
                "adminState": "up",
            },
            "cables": lambda: {
                "type": rng.choice(("SMF", "MMF", "DAC")),
                "length": f"{rng.randint(1, 30)}m",
                "a": {"portRef": {"name": f"{site}-leaf-01-eth1-1"}},
                "b": {"portRef": {"name": f"{site}-spine-01-eth1-1"}},
            },
            "circuits": lambda: {
                "providerRef": {"name": "zayo"},
                "circuitID": f"ZY/{rng.randint(100000, 999999)}",
                "bandwidth": "10G",
                "commitRate": "5G",
            },
            "virtualmachines": lambda: {
                "clusterRef": {"name": f"{site}-k8s-01"},
                "vcpus": rng.choice((2, 4, 8, 16)),
                "memory": rng.choice(("4Gi", "16Gi", "64Gi")),
                "image": "ubuntu-24.04-server",
                "powerState": "On",
            },
        }
        return specs[resource]()
