"""``activity serve`` driven by the real kubectl binary, backed by chDB and a real nats-server:
discovery, Table columns, -o yaml, field selectors, get, create of query resources and a
PolicyPreview, 422 causes, and ``kubectl get --watch``."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
import yaml

from processor.serve.settings import ServeSettings
from processor.sink.chdb import ChdbSink
from processor.stream.server import NatsServer
from processor.stream.topology import ensure_streams
from tests.integration import serve_tools as st

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbSink]:
    with st.seeded_sink(tmp_path_factory.mktemp("serve") / "chdb") as sink:
        yield sink


@pytest.fixture(scope="module")
def kubectl(
    sink: ChdbSink, nats_server: NatsServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[st.Kubectl]:
    binary = st.kubectl_binary()
    settings = ServeSettings(listen_addr="127.0.0.1:0", nats_url=str(nats_server.url))
    with st.running(settings, sink) as server:
        home = tmp_path_factory.mktemp("kubectl-home")
        yield st.Kubectl(binary, f"http://127.0.0.1:{server.port}", home)


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_get_prints_upstreams_columns(kubectl: st.Kubectl) -> None:
    out = kubectl.ok("get", "activities", "-A")
    lines = out.strip().splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "SUMMARY",
        "ACTOR",
        "RESOURCE",
        "SOURCE",
        "AGE",
    ]
    assert len(lines) == 1 + len(st.ACTIVITIES)
    assert lines[1].split()[:2] == ["default", "act-000000000000"]  # newest first
    assert "Deployment/obj-0" in lines[1] and "alice" in lines[1]
    carol = next(line for line in lines if "carol" in line)
    assert st.LONG[:57] + "..." in carol and st.LONG not in carol  # 60 characters at most
    # kubectl follows the continue tokens of pages of 2
    paged = kubectl.ok("get", "activities", "-A", "--chunk-size", "2", "-o", "name").split()
    assert [p.rpartition("/")[2] for p in paged] == [a["metadata"]["name"] for a in st.ACTIVITIES]
    # the URL's namespace narrows; the short name and the category resolve
    assert len(_rows(kubectl.ok("get", "act", "-n", "team-a"))) == 1 + 2
    assert "No resources found" in kubectl.run("get", "activity", "-n", "nowhere").stderr


def test_get_yaml_and_by_name(kubectl: st.Kubectl) -> None:
    doc = yaml.safe_load(kubectl.ok("get", "activities", "-A", "-o", "yaml"))
    names = [item["metadata"]["name"] for item in doc["items"]]
    assert names == [a["metadata"]["name"] for a in st.ACTIVITIES]
    assert doc["items"][0]["spec"]["actor"]["name"] == "alice"
    one = yaml.safe_load(kubectl.ok("get", "activity", "act-000000000001", "-o", "yaml"))
    assert one["spec"]["summary"] == "bob deleted Pod web-1"
    missing = kubectl.run("get", "activity", "act-ffffffffffff")
    assert missing.returncode == 1
    assert 'activities.activity.miloapis.com "act-ffffffffffff" not found' in missing.stderr


def test_field_selectors(kubectl: st.Kubectl) -> None:
    def names(selector: str) -> list[str]:
        out = kubectl.ok("get", "activities", "-A", "--field-selector", selector, "-o", "name")
        return [line.rpartition("/")[2] for line in out.split()]

    assert names("spec.actor.name=bob") == ["act-000000000001"]
    assert names("spec.resource.kind==Deployment,spec.changeSource=human") == [
        "act-000000000000",
        "act-000000000004",
    ]
    assert len(names("spec.resource.kind!=Deployment")) == 3
    # labels upstream accepts but ignores are honoured
    assert names("spec.resource.namespace=team-a,spec.actor.uid=uid-dave") == ["act-000000000003"]
    bad = kubectl.run("get", "activities", "-A", "--field-selector", "spec.actor.email=x")
    assert bad.returncode == 1
    assert "unsupported field selector: spec.actor.email" in bad.stderr


AUDIT_QUERY = """
apiVersion: activity.miloapis.com/v1alpha1
kind: AuditLogQuery
metadata:
  generateName: audit-
spec:
  startTime: now-1d
  endTime: now
  filter: "user.username == 'alice'"
  limit: 1
"""


def test_create_query_resources(kubectl: st.Kubectl) -> None:
    doc = yaml.safe_load(kubectl.ok("create", "-f", "-", "-o", "yaml", input=AUDIT_QUERY))
    assert doc["kind"] == "AuditLogQuery" and doc["metadata"]["name"].startswith("audit-")
    status = doc["status"]
    assert [e["auditID"] for e in status["results"]] == [st.AUDIT[0]["auditID"]]
    assert status["continue"] and status["effectiveStartTime"] < status["effectiveEndTime"]
    # the next page with the token: the other one of alice's, then no more
    spec = yaml.safe_load(AUDIT_QUERY)
    spec["spec"]["continue"] = status["continue"]
    nxt = yaml.safe_load(kubectl.ok("create", "-f", "-", "-o", "yaml", input=yaml.safe_dump(spec)))
    assert [e["auditID"] for e in nxt["status"]["results"]] == [st.AUDIT[2]["auditID"]]
    assert nxt["status"]["continue"] == ""
    events = """
apiVersion: activity.miloapis.com/v1alpha1
kind: EventQuery
metadata: {name: warnings}
spec: {startTime: now-1d, endTime: now, fieldSelector: "type=Warning"}
"""
    out = yaml.safe_load(kubectl.ok("create", "-f", "-", "-o", "yaml", input=events))
    records = out["status"]["results"]
    assert [(r["kind"], r["event"]["reason"]) for r in records] == [("EventRecord", "BackOff")]
    facets = """
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityFacetQuery
metadata: {name: kinds}
spec: {facets: [{field: spec.resource.kind, limit: 2}]}
"""
    out = yaml.safe_load(kubectl.ok("create", "-f", "-", "-o", "yaml", input=facets))
    assert out["status"]["facets"] == [
        {"field": "spec.resource.kind", "values": [{"value": "Deployment", "count": 2},
                                                   {"value": "ConfigMap", "count": 1}]}
    ]  # fmt: skip


PREVIEW = """
apiVersion: activity.miloapis.com/v1alpha1
kind: PolicyPreview
metadata: {name: deployments}
spec:
  policy:
    resource: {apiGroup: apps, kind: Deployment}
    auditRules:
      - name: delete
        match: "audit.verb == 'delete'"
        summary: "{{ actor }} deleted {{ audit.objectRef.name }}"
  inputs:
    - type: audit
      audit: AUDIT
""".replace("AUDIT", orjson.dumps(st.AUDIT[0]).decode())


def test_create_policypreview(kubectl: st.Kubectl) -> None:
    out = yaml.safe_load(kubectl.ok("create", "-f", "-", "-o", "yaml", input=PREVIEW))
    result = out["status"]["results"][0]
    assert result["matched"] and result["matchedRuleName"] == "delete"
    assert out["status"]["activities"][0]["spec"]["summary"] == "alice deleted web-0"
    example = Path(__file__).parents[2] / "examples" / "preview-deployment.yaml"
    out = yaml.safe_load(kubectl.ok("create", "-f", str(example), "-o", "yaml"))
    assert len(out["status"]["results"]) == 3 and out["status"]["activities"]
    broken = PREVIEW.replace("audit.verb == 'delete'", "audit.verb ==")
    bad = kubectl.run("create", "-f", "-", "-o", "yaml", input=broken)
    assert bad.returncode == 1
    assert 'The PolicyPreview "deployments" is invalid' in bad.stderr
    assert "spec.policy.auditRules[0].match" in bad.stderr


def test_invalid_query_has_field_causes(kubectl: st.Kubectl) -> None:
    manifest = """
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityQuery
metadata: {name: bad}
spec: {startTime: now-1x, filter: "spec.foo == 1", limit: 5000}
"""
    done = kubectl.run("create", "-f", "-", "-o", "yaml", input=manifest)
    assert done.returncode == 1
    text = done.stderr
    assert 'The ActivityQuery "bad" is invalid:' in text
    assert '* spec.startTime: Invalid value: "now-1x": invalid relative time' in text
    assert "* spec.endTime: Required value: must specify an end time" in text
    assert "* spec.limit: Invalid value: 5000: limit of 5000 exceeds maximum of 1000" in text
    assert "* spec.filter: Invalid value: \"spec.foo == 1\": filter 1:6: field 'spec.foo'" in text
    future = manifest.replace("now-1x", "now-2h").replace("limit: 5000", "endTime: now-3h")
    done = kubectl.run("create", "-f", "-", input=future.replace('filter: "spec.foo == 1", ', ""))
    assert 'spec.endTime: Invalid value: "now-3h": endTime must be after startTime' in done.stderr


def test_events_api(kubectl: st.Kubectl) -> None:
    out = kubectl.ok("get", "events", "-A")
    lines = out.strip().splitlines()
    assert lines[0].split() == ["NAMESPACE", "LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert "pod/n-0" in lines[1] and "BackOff" in lines[1]
    core = yaml.safe_load(
        kubectl.ok("get", "events", "-n", "prod", "--field-selector", "involvedObject.kind=Node",
                   "-o", "yaml")
    )  # fmt: skip
    assert [(e["apiVersion"], e["message"]) for e in core["items"]] == [("v1", "event 2 Scheduled")]
    v1 = yaml.safe_load(kubectl.ok("get", "events.v1.events.k8s.io", "-n", "prod", "ev-1", "-o",
                                   "yaml"))  # fmt: skip
    assert (v1["apiVersion"], v1["note"]) == ("events.k8s.io/v1", "event 1 Started")


async def _consumers(url: str) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        return int((await js.stream_info("ACTIVITIES")).state.consumer_count)
    finally:
        await nc.close()


def wait_for_consumer(url: str, before: int, timeout: float = 20) -> None:
    """Until the watch's consumer exists (messages published earlier would be missed)."""
    deadline = time.monotonic() + timeout
    while asyncio.run(_consumers(url)) <= before:
        assert time.monotonic() < deadline, "the watch created no consumer"
        time.sleep(0.1)


def _read_until(proc: Any, needle: str, timeout: float = 20) -> str:
    """The output of ``proc`` until ``needle`` shows (read by a thread: no buffering trap)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        try:
            seen += lines.get(timeout=0.5)
        except queue.Empty:
            continue
    return seen


def test_watch(kubectl: st.Kubectl, nats_server: NatsServer) -> None:
    url = str(nats_server.url)
    fresh = st.activity(90, "wendy", "Deployment", ("Organization", "acme"), "default",
                        "wendy restarted Deployment web", time.time_ns())  # fmt: skip
    other = st.activity(91, "zed", "Pod", ("Organization", "acme"), "default", "zed deleted Pod x",
                        time.time_ns())  # fmt: skip
    before = asyncio.run(_consumers(url))
    proc = kubectl.popen("get", "activities", "-A", "--watch", "--field-selector",
                         "spec.actor.name=wendy")  # fmt: skip
    try:
        wait_for_consumer(url, before)
        asyncio.run(st.publish_activities(url, [other, fresh]))
        seen = _read_until(proc, "act-00000000005a")
        assert seen.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "SUMMARY"]
        assert "wendy restarted Deployment web" in seen
        assert "zed" not in seen  # the field selector applies to the watch too
    finally:
        proc.kill()
        proc.communicate()
