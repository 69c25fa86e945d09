"""``activity mcp`` through the official SDK's own client: over stdio (``stdio_client`` spawning
``python -m processor mcp``) and over streamable HTTP, against a chDB store filled here.

Checks upstream's tool names, that the arguments upstream ignores narrow the results here, and
that a value written to break out of a CEL string literal stays a value.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from processor.bench.local import free_port
from processor.query.timeparse import NS, format_rfc3339
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOW = time.time_ns()
HOSTILE = "x' || true || '"
TOOLS = {
    "query_audit_logs", "get_audit_log_facets", "query_activities", "get_activity_facets",
    "find_failed_operations", "get_resource_history", "get_user_activity_summary",
    "get_activity_timeline", "summarize_recent_activity", "compare_activity_periods",
    "preview_activity_policy", "query_events", "get_event_facets",
}  # fmt: skip


def _ts(hours: float) -> str:
    return format_rfc3339(NOW - int(hours * 3600 * NS), 3)


def _activity(n: int, actor: str, source: str, kind: str, name: str, hours: float) -> bytes:
    return orjson.dumps({
        "apiVersion": "activity.miloapis.com/v1alpha1", "kind": "Activity",
        "metadata": {"name": f"act-{n}", "namespace": "default", "creationTimestamp": _ts(hours)},
        "spec": {"summary": f"{actor} changed {kind} {name}", "changeSource": source,
                 "actor": {"type": "user", "name": actor, "uid": f"u-{actor}"},
                 "resource": {"apiGroup": "apps" if kind == "Deployment" else "", "kind": kind,
                              "name": name, "namespace": "shop", "uid": f"uid-{kind}-{name}"},
                 "tenant": {"type": "", "name": ""},
                 "origin": {"type": "audit", "id": f"origin-{n}"}},
    })  # fmt: skip


def _audit(n: int, user: str, verb: str, code: int, hours: float) -> bytes:
    return orjson.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete",
        "auditID": f"6b2c3d4e-0000-4000-8000-{n:012d}", "verb": verb,
        "user": {"username": user}, "requestReceivedTimestamp": _ts(hours),
        "objectRef": {"apiGroup": "apps", "resource": "deployments", "name": f"web-{n}",
                      "namespace": "shop"},
        "responseStatus": {"code": code, **({"message": "forbidden"} if code == 403 else {})},
    })  # fmt: skip


def _event(n: int, reason: str, kind: str, hours: float) -> bytes:
    return orjson.dumps({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "eventTime": _ts(hours),
        "metadata": {"name": f"ev-{n}", "namespace": "shop", "uid": f"ev-{n}"},
        "regarding": {"apiVersion": "v1", "kind": kind, "name": f"pod-{n}", "namespace": "shop"},
        "reason": reason, "type": "Warning" if reason == "BackOff" else "Normal",
        "note": f"event {n}", "reportingController": "kubelet",
        "series": {"count": 4, "lastObservedTime": _ts(hours)} if n == 1 else None,
    })  # fmt: skip


ACTIVITIES = [
    _activity(1, "alice", "human", "Deployment", "web", 1),
    _activity(2, "alice", "human", "ConfigMap", "settings", 2),
    _activity(3, "bob", "human", "Deployment", "api", 3),
    _activity(4, "system:kube-controller-manager", "system", "Deployment", "web", 4),
    _activity(5, "carol", "human", "Secret", "token", 30),  # the day before
    _activity(6, HOSTILE, "human", "Secret", "odd", 5),
]
AUDIT = [
    _audit(1, "alice", "create", 201, 1),
    _audit(2, "bob", "delete", 403, 2),
    _audit(3, "bob", "update", 409, 3),
    _audit(4, "carol", "patch", 500, 4),
]
EVENTS = [
    _event(1, "BackOff", "Pod", 1),
    _event(2, "Pulled", "Pod", 2),
    _event(3, "BackOff", "Node", 3),
]


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "chdb"
    sink = ChdbSink(path)
    try:
        migrate(sink)
        sink.open()
        sink.insert("activities", ACTIVITIES, "mcp-activities")
        sink.insert("audit_logs", AUDIT, "mcp-audit")
        sink.insert("k8s_events", EVENTS, "mcp-events")
    finally:
        sink.close()  # chDB opens a store in one process at a time: the server's, next
    return path


def _env() -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "ACTIVITY_DATA_DIR": os.environ.get("TMPDIR", "/tmp")}


async def _session_calls(session: ClientSession, calls: dict[str, tuple[str, dict]]) -> dict:
    await session.initialize()
    out: dict[str, Any] = {"tools": {t.name: t for t in (await session.list_tools()).tools}}
    for key, (tool, arguments) in calls.items():
        result = await session.call_tool(tool, arguments)
        text = result.content[0].text  # type: ignore[union-attr]
        out[key] = ("error", text) if result.is_error else orjson.loads(text)
    return out


CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "alice": ("query_activities", {"startTime": "now-1d", "actorName": "alice"}),
    "human_deployments": (
        "query_activities",
        {
            "startTime": "now-1d",
            "changeSource": "human",
            "resourceKind": "Deployment",
            "apiGroup": "apps",
        },
    ),
    "hostile_actor": ("query_activities", {"startTime": "now-1d", "actorName": HOSTILE}),
    "injection": ("query_activities", {"startTime": "now-1d", "actorName": "alice' || true || '"}),
    "search": ("query_activities", {"startTime": "now-2d", "search": "token"}),
    "history_uid": ("get_resource_history", {"resourceUID": "uid-Deployment-web"}),
    "history_name": ("get_resource_history", {"name": "api", "kind": "Deployment"}),
    "user_summary": ("get_user_activity_summary", {"username": "alice", "includeDetails": True}),
    "timeline": (
        "get_activity_timeline",
        {"startTime": "now-1d", "bucketSize": "day", "changeSource": "system"},
    ),
    "recent": ("summarize_recent_activity", {"startTime": "now-1d", "topN": 2}),
    "compare": (
        "compare_activity_periods",
        {
            "baselineStart": "now-2d",
            "baselineEnd": "now-1d",
            "comparisonStart": "now-1d",
            "comparisonEnd": "now",
        },
    ),
    "activity_facets": (
        "get_activity_facets",
        {"fields": ["spec.actor.name"], "startTime": "now-1d"},
    ),
    "audit": (
        "query_audit_logs",
        {"startTime": "now-1d", "endTime": "now", "filter": "verb in ['delete', 'update']"},
    ),
    "audit_facets": ("get_audit_log_facets", {"fields": ["verb", "user.username"]}),
    "failed": ("find_failed_operations", {"startTime": "now-1d"}),
    "failed_bob_4xx": (
        "find_failed_operations",
        {"startTime": "now-1d", "username": "bob", "statusCodeMax": 499},
    ),
    "failed_injection": ("find_failed_operations", {"startTime": "now-1d", "username": HOSTILE}),
    "events": (
        "query_events",
        {"startTime": "now-1d", "endTime": "now", "reason": "BackOff", "regardingKind": "Pod"},
    ),
    "events_ns": ("query_events", {"startTime": "now-1d", "endTime": "now", "namespace": "other"}),
    "event_facets": ("get_event_facets", {"fields": ["reason"]}),
    "preview": (
        "preview_activity_policy",
        {
            "policy": {
                "resource": {"apiGroup": "apps", "kind": "Deployment"},
                "auditRules": [
                    {
                        "name": "deleted",
                        "match": "audit.verb == 'delete'",
                        "summary": "{{ actor }} deleted {{ audit.objectRef.name }}",
                    }
                ],
            },
            "inputs": [orjson.loads(AUDIT[1])],
        },
    ),
    "preview_auto": (
        "preview_activity_policy",
        {
            "policy": {
                "resource": {"apiGroup": "apps", "kind": "Deployment"},
                "auditRules": [
                    {
                        "name": "changed",
                        "match": "audit.verb != 'get'",
                        "summary": "{{ actor }} {{ audit.verb }}",
                    }
                ],
            },
            "autoFetch": {"limit": 2, "sources": "audit"},
        },
    ),
    "bad_filter": (
        "query_audit_logs",
        {"startTime": "now-1d", "endTime": "now", "filter": "size(verb) > 1"},
    ),
    "bad_preview": (
        "preview_activity_policy",
        {"policy": {"resource": {"kind": ""}}, "inputs": []},
    ),
}


@pytest.fixture(scope="module")
def stdio_results(store_dir: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "processor", "mcp", "--clickhouse-url", f"chdb://{store_dir}"],
        env=_env(),
        cwd=str(ROOT),
    )

    async def run() -> dict[str, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            return await _session_calls(session, CALLS)

    return anyio.run(run)


def _names(result: dict[str, Any], key: str = "activities") -> list[str]:
    return [a["name"] for a in result[key]]


def test_upstream_tools_are_served(stdio_results: dict[str, Any]) -> None:
    tools = stdio_results["tools"]
    assert set(tools) == TOOLS
    schema = tools["query_activities"].input_schema
    assert {"startTime", "changeSource", "actorName", "resourceKind", "apiGroup", "search",
            "limit"} <= set(schema["properties"])  # fmt: skip
    assert schema["required"] == ["startTime"]


def test_activity_arguments_upstream_ignores_are_honoured(stdio_results: dict[str, Any]) -> None:
    assert _names(stdio_results["alice"]) == ["act-1", "act-2"]
    assert _names(stdio_results["human_deployments"]) == ["act-1", "act-3"]
    assert _names(stdio_results["search"]) == ["act-5"]
    history = stdio_results["history_uid"]  # upstream ignores the UID
    assert _names(history) == ["act-4", "act-1"]  # oldest first
    assert history["activities"][0]["resource"]["uid"] == "uid-Deployment-web"
    assert _names(stdio_results["history_name"]) == ["act-3"]
    summary = stdio_results["user_summary"]  # upstream counts every user's activities
    assert summary["totalActivities"] == 2 and summary["byResourceKind"] == {
        "Deployment": 1,
        "ConfigMap": 1,
    }
    assert [a["name"] for a in summary["activities"]] == ["act-1", "act-2"]
    timeline = stdio_results["timeline"]  # upstream ignores changeSource
    assert timeline["totalActivities"] == 1 and timeline["peak"]["count"] == 1


def test_values_cannot_escape_their_cel_literal(stdio_results: dict[str, Any]) -> None:
    assert _names(stdio_results["hostile_actor"]) == ["act-6"]  # the exact name, nothing else
    assert stdio_results["injection"]["activities"] == []
    assert stdio_results["failed_injection"]["count"] == 0


def test_summaries(stdio_results: dict[str, Any]) -> None:
    recent = stdio_results["recent"]
    assert recent["totalActivities"] == 5
    assert recent["byChangeSource"] == {"human": 4, "system": 1}
    assert recent["topActors"] == [{"value": "alice", "count": 2}, {"value": "bob", "count": 1}]
    assert recent["highlights"][0] == "alice changed Deployment web"
    compare = stdio_results["compare"]
    assert (compare["baseline"]["total"], compare["comparison"]["total"]) == (1, 5)
    assert compare["changePercent"] == 400.0
    assert "alice" in compare["newActors"] and "carol" not in compare["newActors"]
    assert compare["increasedKinds"] == {"Deployment": 3, "ConfigMap": 1}
    assert compare["decreasedKinds"] == {}
    assert stdio_results["activity_facets"]["spec.actor.name"][0] == {"value": "alice", "count": 2}


def test_audit_and_event_tools(stdio_results: dict[str, Any]) -> None:
    audit = stdio_results["audit"]
    assert audit["count"] == 2 and {e["verb"] for e in audit["events"]} == {"delete", "update"}
    assert audit["effectiveStartTime"] < audit["effectiveEndTime"]
    assert stdio_results["audit_facets"]["user.username"][0] == {"value": "bob", "count": 2}
    failed = stdio_results["failed"]
    assert failed["count"] == 3 and failed["byStatusCode"] == {"403": 1, "409": 1, "500": 1}
    forbidden = next(f for f in failed["failures"] if f["statusCode"] == 403)
    assert forbidden["message"] == "forbidden" and forbidden["user"] == "bob"
    assert stdio_results["failed_bob_4xx"]["count"] == 2
    events = stdio_results["events"]["events"]
    assert [(e["name"], e["count"], e["type"]) for e in events] == [("ev-1", 4, "Warning")]
    assert stdio_results["events_ns"]["events"] == []
    assert stdio_results["event_facets"]["reason"] == [
        {"value": "BackOff", "count": 2},
        {"value": "Pulled", "count": 1},
    ]


def test_preview_tool(stdio_results: dict[str, Any]) -> None:
    preview = stdio_results["preview"]
    assert preview["results"][0]["matchedRuleName"] == "deleted"
    assert preview["activities"][0]["spec"]["summary"] == "bob deleted web-2"
    auto = stdio_results["preview_auto"]
    assert len(auto["fetchedInputs"]) == 2
    assert [a["spec"]["summary"] for a in auto["activities"]] == ["alice create", "bob delete"]


def test_errors_are_tool_errors(stdio_results: dict[str, Any]) -> None:
    kind, text = stdio_results["bad_filter"]
    assert kind == "error" and "Query failed: filter 1:1: function size() is not supported" in text
    kind, text = stdio_results["bad_preview"]
    assert kind == "error" and "spec.policy.resource.kind" in text


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"activity mcp exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("activity mcp --transport http did not listen")


@pytest.fixture
def http_server(store_dir: Path, stdio_results: dict[str, Any]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "processor", "mcp", "--transport", "http", "--port", str(port),
         "--clickhouse-url", f"chdb://{store_dir}"],
        cwd=ROOT, env={**os.environ, **_env()}, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def test_streamable_http(http_server: str) -> None:
    calls = {"alice": CALLS["alice"]}

    async def run() -> dict[str, Any]:
        async with (
            streamable_http_client(http_server) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await _session_calls(session, calls)

    results = anyio.run(run)
    assert set(results["tools"]) == TOOLS
    assert _names(results["alice"]) == ["act-1", "act-2"]
