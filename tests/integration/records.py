"""Small, realistic input records and policies for the runtime tests."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from processor.subjects import partition_of

POLICY = """\
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata:
  name: {name}
spec:
  resource:
    apiGroup: apps
    kind: Deployment
  auditRules:
    - name: create
      match: "audit.verb == 'create'"
      summary: "{{{{ actor }}}} {word} deployment {{{{ audit.objectRef.name }}}}"
    - name: delete
      match: "audit.verb == 'delete'"
      summary: "{{{{ actor }}}} deleted deployment {{{{ audit.objectRef.name }}}}"
  eventRules:
    - name: scaled
      match: "event.reason == 'ScalingReplicaSet'"
      summary: "{{{{ event.regarding.name }}}} scaled"
"""


def policy(name: str = "deployments", word: str = "created") -> str:
    """A Deployment policy; ``word`` changes the create summary (to observe reloads)."""
    return POLICY.format(name=name, word=word)


def audit(
    name: str,
    *,
    verb: str = "create",
    namespace: str = "default",
    user: str = "alice",
    seq: int = 0,
) -> dict[str, Any]:
    """A ResponseComplete audit event for a Deployment."""
    audit_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{verb}/{namespace}/{seq}"))
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": f"/apis/apps/v1/namespaces/{namespace}/deployments",
        "verb": verb,
        "user": {"username": user, "uid": f"uid-{user}"},
        "sourceIPs": ["203.0.113.7"],
        "objectRef": {
            "resource": "deployments",
            "namespace": namespace,
            "name": name,
            "apiGroup": "apps",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 201 if verb == "create" else 200},
        "requestReceivedTimestamp": f"2026-11-20T10:{seq // 60 % 60:02d}:{seq % 60:02d}.123456Z",
        "stageTimestamp": f"2026-11-20T10:{seq // 60 % 60:02d}:{seq % 60:02d}.223456Z",
    }


def event(name: str, *, namespace: str = "default", seq: int = 0) -> dict[str, Any]:
    """An events.k8s.io/v1 ScalingReplicaSet Event regarding a Deployment."""
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name}.{seq}",
            "namespace": namespace,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"event/{name}/{seq}")),
            "creationTimestamp": "2026-11-20T10:00:00Z",
        },
        "eventTime": "2026-11-20T10:00:00.000000Z",
        "reportingController": "deployment-controller",
        "reportingInstance": "kcm-1",
        "action": "Scale",
        "reason": "ScalingReplicaSet",
        "regarding": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "namespace": namespace,
            "name": name,
        },
        "note": f"Scaled up replica set {name}-abc to 3",
        "type": "Normal",
    }


def event_list(items: list[dict[str, Any]]) -> bytes:
    """An audit EventList message."""
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


def audit_subject(record: dict[str, Any], partitions: int) -> str:
    """The partitioned subject of an audit record."""
    ref = record["objectRef"]
    part = partition_of(ref["apiGroup"], ref["resource"], ref["namespace"], ref["name"], partitions)
    return f"audit.k8s.p{part}"
