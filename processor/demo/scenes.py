"""The scenes of the demo story, in the order they start (offsets in seconds)."""

from __future__ import annotations

from collections.abc import Callable

from processor.demo.actors import (
    ALICE,
    BOB,
    CI_DEPLOYER,
    controller,
    kubelet,
)
from processor.demo.story import (
    Story,
)

NS = "shop"
WEB_RS = "web-7d9f8c6b5"
WORKER_RS = "worker-5c6d7f4b8"
WEB_IMAGE = "nginx:1.27.2"
WORKER_IMAGE = "registry.example.com/shop/worker:1.4.2"
FIXED_IMAGE = "registry.example.com/shop/worker:1.4.3"


def deployment(replicas: int, image: str, app: str) -> dict:
    """A Deployment spec with one container."""
    return {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": app}},
        "template": {
            "metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    }


def background(s: Story) -> None:
    """Leases every ~10 s per node and periodic controller reads: the bulk of the records."""
    for i in range(30):
        s.lease(5 + i * 58.7, ("worker-1", "worker-2", "worker-3")[i % 3])
    for i, (resource, group) in enumerate(
        (("pods", ""), ("deployments", "apps"), ("configmaps", ""), ("secrets", ""))
    ):
        s.reads(12 + i * 301.3, controller("generic-garbage-collector"), resource, "", group)


def namespace_and_web(s: Story) -> None:
    """Alice creates the namespace and Deployment web (2 replicas); the system starts its Pods."""
    ns_obj = s.obj(
        30, "v1", "Namespace", NS, spec={"finalizers": ["kubernetes"]}, manager="kubectl-create"
    )
    s.audit(
        30,
        ALICE,
        "create",
        "namespaces",
        name=NS,
        request={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        response=ns_obj,
    )
    s.audit(
        30.4,
        controller("service-account-controller"),
        "create",
        "serviceaccounts",
        name="default",
        namespace=NS,
    )
    s.audit(
        30.5,
        controller("root-ca-cert-publisher"),
        "create",
        "configmaps",
        name="kube-root-ca.crt",
        namespace=NS,
    )
    spec = deployment(2, WEB_IMAGE, "web")
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": spec,
    }
    s.audit(
        60,
        ALICE,
        "create",
        "deployments",
        name="web",
        namespace=NS,
        group="apps",
        request=body,
        response=s.obj(
            60, "apps/v1", "Deployment", "web", NS, spec=spec, manager="kubectl-client-side-apply"
        ),
    )
    s.audit(
        60.2,
        controller("deployment-controller"),
        "create",
        "replicasets",
        name=WEB_RS,
        namespace=NS,
        group="apps",
    )
    s.event(
        60.3,
        reason="ScalingReplicaSet",
        note=f"Scaled up replica set {WEB_RS} to 2",
        controller="deployment-controller",
        regarding=s.ref("apps/v1", "Deployment", "web", NS),
    )
    for i, node in enumerate(("worker-1", "worker-2")):
        s.pod_started(61 + i, f"{WEB_RS}-{s.b.suffix()}", NS, node, WEB_IMAGE)
    s.status_patch(64, controller("deployment-controller"), "deployments", "web", NS, "apps", "v1")


def service_config_secret(s: Story) -> None:
    """Alice exposes web; Bob adds its ConfigMap and database Secret (audited at Metadata)."""
    svc = {
        "type": "ClusterIP",
        "selector": {"app": "web"},
        "ports": [{"port": 80, "targetPort": 8080}],
    }
    s.audit(
        120,
        ALICE,
        "create",
        "services",
        name="web",
        namespace=NS,
        request={"kind": "Service", "spec": svc},
        response=s.obj(120, "v1", "Service", "web", NS, spec={**svc, "clusterIP": "10.96.41.7"}),
    )
    s.audit(
        121,
        controller("endpointslice-controller"),
        "create",
        "endpointslices",
        name=f"web-{s.b.suffix()}",
        namespace=NS,
        group="discovery.k8s.io",
    )
    data = {"LOG_LEVEL": "info", "CACHE_TTL": "300"}
    s.audit(
        150,
        BOB,
        "create",
        "configmaps",
        name="web-config",
        namespace=NS,
        request={"kind": "ConfigMap", "data": data},
        response=s.obj(150, "v1", "ConfigMap", "web-config", NS, extra={"data": data}),
    )
    s.audit(180, BOB, "create", "secrets", name="db-credentials", namespace=NS, level="Metadata")


def scale_web(s: Story) -> None:
    """Alice scales web from 2 to 5 through the scale subresource; three more Pods start."""
    scale = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": 5},
        "status": {"replicas": 2, "selector": "app=web"},
    }
    s.audit(
        240,
        ALICE,
        "patch",
        "deployments",
        name="web",
        namespace=NS,
        group="apps",
        subresource="scale",
        request={"spec": {"replicas": 5}},
        response=scale,
    )
    s.event(
        240.3,
        reason="ScalingReplicaSet",
        note=f"Scaled up replica set {WEB_RS} to 5 from 2",
        controller="deployment-controller",
        regarding=s.ref("apps/v1", "Deployment", "web", NS),
    )
    for i, node in enumerate(("worker-3", "worker-1", "worker-2")):
        s.pod_started(241 + i, f"{WEB_RS}-{s.b.suffix()}", NS, node, WEB_IMAGE)


def worker_crash_loop(s: Story) -> None:
    """Alice deploys worker; it crash-loops until she rolls out a fixed image."""
    spec = deployment(1, WORKER_IMAGE, "worker")
    s.audit(
        300,
        ALICE,
        "create",
        "deployments",
        name="worker",
        namespace=NS,
        group="apps",
        request={"kind": "Deployment", "metadata": {"name": "worker"}, "spec": spec},
        response=s.obj(300, "apps/v1", "Deployment", "worker", NS, spec=spec),
    )
    s.event(
        300.3,
        reason="ScalingReplicaSet",
        note=f"Scaled up replica set {WORKER_RS} to 1",
        controller="deployment-controller",
        regarding=s.ref("apps/v1", "Deployment", "worker", NS),
    )
    pod = f"{WORKER_RS}-{s.b.suffix()}"
    pod_key = f"Pod/{NS}/{pod}"
    s.pod_started(301, pod, NS, "worker-3", WORKER_IMAGE)
    s.event(
        335,
        reason="BackOff",
        type="Warning",
        controller="kubelet",
        instance="worker-3",
        note=f"Back-off restarting failed container app in pod {pod}_{NS}({s.uid(pod_key)})",
        regarding=s.ref("v1", "Pod", pod, NS),
    )
    s.status_patch(336, kubelet("worker-3"), "pods", pod, NS, "", "v1")
    fixed = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": FIXED_IMAGE}]}}}
    }
    s.audit(
        480,
        ALICE,
        "patch",
        "deployments",
        name="worker",
        namespace=NS,
        group="apps",
        request=fixed,
        response=s.obj(
            480, "apps/v1", "Deployment", "worker", NS, spec=deployment(1, FIXED_IMAGE, "worker")
        ),
    )
    new_rs = "worker-6f8b9d7c4"
    s.event(
        480.2,
        reason="ScalingReplicaSet",
        note=f"Scaled up replica set {new_rs} to 1",
        controller="deployment-controller",
        regarding=s.ref("apps/v1", "Deployment", "worker", NS),
    )
    s.pod_started(481, f"{new_rs}-{s.b.suffix()}", NS, "worker-1", FIXED_IMAGE)
    s.event(
        495,
        reason="ScalingReplicaSet",
        note=f"Scaled down replica set {WORKER_RS} to 0 from 1",
        controller="deployment-controller",
        regarding=s.ref("apps/v1", "Deployment", "worker", NS),
    )


def bob_edits(s: Story) -> None:
    """Bob sets LOG_LEVEL, rotates the Secret, is refused a delete; a dry run; a CI bot patch."""
    patch = {"data": {"LOG_LEVEL": "debug"}}
    s.audit(
        420,
        BOB,
        "patch",
        "configmaps",
        name="web-config",
        namespace=NS,
        request=patch,
        query="fieldManager=kubectl-patch",
        response=s.obj(
            420,
            "v1",
            "ConfigMap",
            "web-config",
            NS,
            extra={"data": {"LOG_LEVEL": "debug", "CACHE_TTL": "300"}},
        ),
    )
    s.audit(450, BOB, "update", "secrets", name="db-credentials", namespace=NS, level="Metadata")
    s.audit(
        540,
        BOB,
        "delete",
        "deployments",
        name="web",
        namespace=NS,
        group="apps",
        code=403,
        message='deployments.apps "web" is forbidden: User "bob" cannot delete resource '
        '"deployments" in API group "apps" in the namespace "shop"',
    )
    dry = {"spec": {"replicas": 3}}
    s.audit(
        570,
        ALICE,
        "patch",
        "deployments",
        name="web",
        namespace=NS,
        group="apps",
        query="dryRun=All",
        request=dry,
        response=s.obj(
            570, "apps/v1", "Deployment", "web", NS, spec=deployment(3, WEB_IMAGE, "web")
        ),
    )
    s.audit(600, ALICE, "get", "secrets", name="db-credentials", namespace=NS, level="Metadata")
    s.audit(
        630,
        CI_DEPLOYER,
        "patch",
        "deployments",
        name="web",
        namespace=NS,
        group="apps",
        request={"metadata": {"annotations": {"ci.example.com/commit": "9f3c2e1"}}},
        response=s.obj(
            630, "apps/v1", "Deployment", "web", NS, spec=deployment(5, WEB_IMAGE, "web")
        ),
    )


def jobs_and_rbac(s: Story) -> None:
    """Alice schedules a nightly report and runs it once by hand; she lets Bob edit ConfigMaps."""
    cron = {
        "schedule": "0 2 * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never"}}}},
    }
    s.audit(
        700,
        ALICE,
        "create",
        "cronjobs",
        name="nightly-report",
        namespace=NS,
        group="batch",
        request={"kind": "CronJob", "spec": cron},
        response=s.obj(700, "batch/v1", "CronJob", "nightly-report", NS, spec=cron),
    )
    job = f"nightly-report-manual-{s.b.suffix(3)}"
    job_spec = {"template": {"spec": {"restartPolicy": "Never"}}}
    owner = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": "nightly-report",
        "uid": s.uid(f"CronJob/{NS}/nightly-report"),
    }
    meta = {
        "name": job,
        "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        "ownerReferences": [owner],
    }
    s.audit(
        720,
        ALICE,
        "create",
        "jobs",
        name=job,
        namespace=NS,
        group="batch",
        request={"kind": "Job", "metadata": meta, "spec": job_spec},
        response=s.obj(720, "batch/v1", "Job", job, NS, spec=job_spec),
    )
    s.pod_started(
        721, f"{job}-{s.b.suffix()}", NS, "worker-2", "registry.example.com/shop/report:2.0.1"
    )
    s.status_patch(760, controller("job-controller"), "jobs", job, NS, "batch", "v1")
    s.event(
        760.1,
        reason="Completed",
        note="Job completed",
        controller="job-controller",
        regarding=s.ref("batch/v1", "Job", job, NS),
    )
    binding = {
        "kind": "RoleBinding",
        "metadata": {"name": "bob-configmaps", "namespace": NS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
    }
    s.audit(
        780,
        ALICE,
        "create",
        "rolebindings",
        name="bob-configmaps",
        namespace=NS,
        group="rbac.authorization.k8s.io",
        request=binding,
        response=binding,
    )


SCENES: list[Callable[[Story], None]] = [
    background,
    namespace_and_web,
    service_config_secret,
    scale_web,
    worker_crash_loop,
    bob_edits,
    jobs_and_rbac,
]
