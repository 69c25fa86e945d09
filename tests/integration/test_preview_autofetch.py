"""PolicyPreview autoFetch on stored data (chDB): upstream's four autoFetch cases (audit only,
events only, both, nothing found) with real rows and decoys the rule filter and the field selector
must leave out, the fixed upstream behaviours, ``activity preview -f ... --clickhouse-url``, and
the demo's scenario stored as the demo's worker stores it.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import yaml

from processor import cli
from processor.demo.scenario import scenario
from processor.policy.bundled import bundled_policy_dir
from processor.preview import load_manifest, run_preview
from processor.preview_fetch import Scope
from processor.query.timeparse import NS, format_rfc3339
from processor.sink.chdb import ChdbSink
from processor.stages import DEFAULT_STAGES
from processor.worker.raw import raw_rows

pytestmark = pytest.mark.integration

GROUP = "networking.datumapis.com"
NOW = time.time_ns()


def _ago(hours: float) -> str:
    return format_rfc3339(NOW - int(hours * 3600 * NS), 6)


def _audit(n: int, verb: str, user: str, hours: float, **ref: str) -> dict[str, Any]:
    object_ref = {"apiGroup": GROUP, "resource": "httpproxies", "name": f"proxy-{n}"} | ref
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": f"5b2c3d4e-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": user, "uid": f"uid-{user}"},
        "objectRef": object_ref,
        "responseStatus": {"code": 201 if verb == "create" else 200},
        "requestReceivedTimestamp": _ago(hours),
        "annotations": {
            "platform.miloapis.com/scope.type": "Organization",
            "platform.miloapis.com/scope.name": "acme" if n % 2 else "globex",
        },
    }


def _event(n: int, reason: str, hours: float, api_version: str = f"{GROUP}/v1alpha1",
           kind: str = "HTTPProxy") -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"ev-{n}", "namespace": "default", "uid": f"ev-uid-{n}"},
        "eventTime": _ago(hours),
        "regarding": {"apiVersion": api_version, "kind": kind, "name": f"proxy-{n}",
                      "namespace": "default"},
        "reason": reason,
        "type": "Normal",
        "note": "Successfully deployed",
        "reportingController": "deploy-controller",
    }  # fmt: skip


AUDIT = [
    _audit(1, "create", "alice@example.com", 1),  # the one upstream's AuditOnly case fetches
    _audit(2, "delete", "bob@example.com", 0.5),  # left out by the rule filter
    _audit(3, "create", "carol@example.com", 0.2, apiGroup="other.example.com"),  # other group
    _audit(4, "create", "dave@example.com", 0.3, resource="httpproxyclasses"),  # other resource
    _audit(5, "create", "erin@example.com", 30),  # before the window
]
EVENTS = [
    _event(1, "Deployed", 1),  # the one upstream's EventsOnly case fetches
    _event(2, "Programmed", 0.5),  # left out by the rule's reason
    _event(3, "Deployed", 0.2, api_version="other.example.com/v1"),  # same kind, other group
    _event(4, "Deployed", 0.3, kind="Gateway"),  # other kind
]

AUDIT_RULE = {"name": "rule-create", "match": 'audit.verb == "create"',
              "summary": "{{ actor }} created HTTPProxy"}  # fmt: skip
EVENT_RULE = {"name": "rule-deployed", "match": 'event.reason == "Deployed"',
              "summary": "{{ actor }} deployed HTTPProxy"}  # fmt: skip


@pytest.fixture
def store(chdb_sink: ChdbSink) -> ChdbSink:
    chdb_sink.insert("audit_logs", [orjson.dumps(r) for r in AUDIT], "preview-audit")
    chdb_sink.insert("k8s_events", [orjson.dumps(r) for r in EVENTS], "preview-events")
    return chdb_sink


def _manifest(auto: dict[str, Any], audit: bool = True, events: bool = True,
              kind: str = "HTTPProxy") -> str:  # fmt: skip
    policy: dict[str, Any] = {"resource": {"apiGroup": GROUP, "kind": kind}}
    if audit:
        policy["auditRules"] = [AUDIT_RULE]
    if events:
        policy["eventRules"] = [EVENT_RULE]
    doc = {"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "PolicyPreview",
           "metadata": {"name": "auto"}, "spec": {"policy": policy, "autoFetch": auto}}  # fmt: skip
    return yaml.safe_dump(doc)


def _preview(store: ChdbSink, text: str, scope: Scope | None = None) -> dict[str, Any]:
    manifest, policy = load_manifest(text)
    return run_preview(manifest, policy, backend=store, scope=scope)


def _fetched(result: dict[str, Any]) -> list[str]:
    out = []
    for item in result["status"].get("fetchedInputs", []):
        record = item[item["type"]]
        name = (record.get("objectRef") or record.get("regarding"))["name"]
        out.append(f"{item['type']}:{name}")
    return out


def test_upstream_autofetch_audit_only(store: ChdbSink) -> None:
    result = _preview(store, _manifest({"limit": 10, "timeRange": "24h", "sources": "audit"}))
    assert _fetched(result) == ["audit:proxy-1"]
    (r,) = result["status"]["results"]
    assert (r["matched"], r["matchedRuleType"], r["matchedRuleName"]) == (
        True,
        "audit",
        "rule-create",
    )
    (activity,) = result["status"]["activities"]
    assert activity["spec"]["summary"] == "alice@example.com created HTTPProxy"


def test_upstream_autofetch_events_only(store: ChdbSink) -> None:
    result = _preview(store, _manifest({"limit": 10, "timeRange": "24h", "sources": "events"}))
    assert _fetched(result) == ["event:proxy-1"]
    assert result["status"]["results"][0]["matched"] is True
    (activity,) = result["status"]["activities"]
    assert activity["spec"]["summary"] == "deploy-controller deployed HTTPProxy"


def test_upstream_autofetch_both(store: ChdbSink) -> None:
    result = _preview(store, _manifest({"limit": 10, "timeRange": "24h", "sources": "both"}))
    assert _fetched(result) == ["audit:proxy-1", "event:proxy-1"]
    assert [a["spec"]["origin"]["type"] for a in result["status"]["activities"]] == [
        "audit",
        "event",
    ]


def test_upstream_autofetch_empty_results(store: ChdbSink) -> None:
    result = _preview(store, _manifest({"sources": "audit"}, kind="Gateway"))
    assert "fetchedInputs" not in result["status"]
    assert result["status"]["results"] == [] and result["status"]["activities"] == []


def test_window_limit_and_sources_by_rules(store: ChdbSink) -> None:
    # a week reaches the 30-hour-old create; limit 1 keeps the newest per source
    week = _preview(store, _manifest({"timeRange": "7d"}, events=False))
    assert _fetched(week) == ["audit:proxy-1", "audit:proxy-5"]
    one = _preview(store, _manifest({"timeRange": "now-7d", "limit": 1}))
    assert _fetched(one) == ["audit:proxy-1", "event:proxy-1"]
    # only the sources the policy has rules for are read
    assert _fetched(_preview(store, _manifest({}, audit=False))) == ["event:proxy-1"]


def test_tenant_scope_applies(store: ChdbSink) -> None:
    acme = _preview(store, _manifest({"sources": "audit"}), Scope("Organization", "acme"))
    assert _fetched(acme) == ["audit:proxy-1"]
    globex = _preview(store, _manifest({"sources": "audit"}), Scope("Organization", "globex"))
    assert _fetched(globex) == []


def test_untranslatable_rules_select_by_resource(store: ChdbSink) -> None:
    doc = yaml.safe_load(_manifest({"sources": "audit"}, events=False))
    doc["spec"]["policy"]["auditRules"] = [
        {"name": "by-user", "match": "actorRef.type == 'user' && audit.verb != 'get'",
         "summary": "{{ actor }} did {{ audit.verb }}"},
    ]  # fmt: skip
    result = _preview(store, yaml.safe_dump(doc))
    assert _fetched(result) == ["audit:proxy-2", "audit:proxy-1"]  # newest first
    assert [a["spec"]["summary"] for a in result["status"]["activities"]] == [
        "bob@example.com did delete",
        "alice@example.com did create",
    ]


def test_cli_preview_autofetch(store: ChdbSink, tmp_path: Path, capsys) -> None:
    manifest = tmp_path / "auto.yaml"
    manifest.write_text(_manifest({"limit": 5}))
    url = f"chdb://{store.path}"
    assert cli.main(["preview", "-f", str(manifest), "--clickhouse-url", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith("input 0 [audit ") and "alice@example.com create" in out[0]
    assert out[0].endswith(
        "matched audit rule 0 (rule-create): alice@example.com created HTTPProxy"
    )
    assert out[1].startswith("input 1 [event ") and out[1].endswith(
        "deploy-controller deployed HTTPProxy"
    )
    assert cli.main(["preview", "-f", str(manifest), "--clickhouse-url", url, "-o", "json"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert len(doc["status"]["fetchedInputs"]) == 2 and len(doc["status"]["activities"]) == 2
    manifest.write_text(_manifest({"sources": "audit"}, kind="Gateway"))
    assert cli.main(["preview", "-f", str(manifest), "--clickhouse-url", url]) == 0
    assert "no audit logs or Events of this policy's kind found" in capsys.readouterr().out
    manifest.write_text(_manifest({"timeRange": "45d", "sources": "audit"}))
    assert cli.main(["preview", "-f", str(manifest), "--clickhouse-url", url]) == 1
    assert "error:" in capsys.readouterr().err


def test_demo_scenario_previews_bundled_policy(chdb_sink: ChdbSink, capsys) -> None:
    """The demo's records stored as its worker stores them (store_raw): ``activity preview -f
    POLICY --auto-fetch`` previews a bundled policy on them."""
    records = scenario()
    for source in ("audit", "event"):
        deliveries = [
            SimpleNamespace(data=orjson.dumps(r.payload)) for r in records if r.kind == source
        ]
        table, rows = raw_rows(deliveries, source, DEFAULT_STAGES)  # type: ignore[arg-type]
        chdb_sink.insert(table, rows, f"demo-{source}")
    policy = bundled_policy_dir() / "kubernetes" / "apps-deployments.yaml"
    url = f"chdb://{chdb_sink.path}"
    argv = ["preview", "-f", str(policy), "--auto-fetch", "--limit", "50", "--clickhouse-url", url]
    assert cli.main([*argv, "-o", "json"]) == 0
    status = orjson.loads(capsys.readouterr().out)["status"]
    summaries = [a["spec"]["summary"] for a in status["activities"]]
    assert any(s.startswith("alice") and "created Deployment" in s for s in summaries), summaries
    fetched = status["fetchedInputs"]
    assert {i["type"] for i in fetched} == {"audit", "event"}
    for item in fetched:  # only Deployments were read
        if item["type"] == "audit":
            assert item["audit"]["objectRef"]["resource"] == "deployments"
        else:
            assert item["event"]["regarding"]["kind"] == "Deployment"
    assert cli.main([*argv[:-2], "--sources", "audit", "--time-range", "1h",
                     "--clickhouse-url", url]) == 0  # fmt: skip
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")]
    assert lines and all(line.startswith("input ") and " [audit " in line for line in lines)
    assert any("matched audit rule" in line for line in lines)


def test_quick_mode_usage_errors(tmp_path: Path, capsys) -> None:
    policy = str(bundled_policy_dir() / "kubernetes" / "apps-deployments.yaml")
    records = tmp_path / "r.jsonl"
    records.write_text("{}")
    for argv in (
        ["-f", policy, "--limit", "5"],
        ["-f", policy, "--auto-fetch", "--input", str(records)],
    ):
        assert cli.main(["preview", *argv]) == 2
        assert "activity preview:" in capsys.readouterr().err
