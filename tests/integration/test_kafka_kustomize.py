"""The kustomize layouts render with Debian's kubectl: the Kafka variant runs the workers as a
Deployment in a consumer group (no StatefulSet, no NATS resources) with a topics Job, and the
NATS base still holds what it held."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import missing_server

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def render(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing_server("kubectl is not installed (apt-get install kubernetes-client)")
    out = subprocess.run(
        [str(kubectl), "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def test_kafka_variant_is_a_deployment_in_a_consumer_group() -> None:
    objects = render(DEPLOY / "kafka")
    kinds = {kind for kind, _ in objects}
    assert "StatefulSet" not in kinds and not kinds & {"Stream", "Consumer"}
    workers = objects[("Deployment", "activity-processor")]["spec"]
    containers = {c["name"]: c for c in workers["template"]["spec"]["containers"]}
    assert containers["worker"]["command"] == ["activity", "run"]
    assert containers["reconciler"]["command"] == ["activity", "reconcile"]
    assert workers["replicas"] == 2
    job = objects[("Job", "activity-kafka-topics")]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["activity", "kafka", "topics"]
    assert ("Job", "activity-migrate") in objects
    config = next(d for (kind, _), d in objects.items() if kind == "ConfigMap")["data"]
    assert config["ACTIVITY_TRANSPORT"] == "kafka" and config["ACTIVITY_KAFKA_BROKERS"]
    assert config["ACTIVITY_INGEST_KAFKA_BROKERS"] == config["ACTIVITY_KAFKA_BROKERS"]
    refs = {e["configMapRef"]["name"] for c in containers.values() for e in c.get("envFrom", [])}
    assert refs == {next(n for k, n in objects if k == "ConfigMap")}  # the hashed name
    # the Service and ServiceMonitor select the Deployment's pods
    selector = objects[("Service", "activity-processor")]["spec"]["selector"]
    labels = workers["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_nats_base_keeps_its_statefulset_and_nats_resources() -> None:
    objects = render(DEPLOY)
    kinds = {kind for kind, _ in objects}
    assert {"StatefulSet", "Stream", "Consumer", "ServiceMonitor", "Namespace"} <= kinds
    assert ("Deployment", "activity-processor") not in objects
    assert ("Job", "activity-migrate") in objects
