"""Engine and ``activity translate``: first match wins, upstream error behaviour, dead letters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from processor.cli import main
from processor.engine import Engine
from processor.policy import parse_policy_text
from processor.translate import Output, Translator
from tests.unit.parity import PATHS, translator_on

POLICIES = """
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata: {name: first}
spec:
  resource: {apiGroup: apps, kind: Deployment}
  auditRules:
    - name: broken
      match: audit.verb == 'patch' && audit.requestObject.spec.paused
      summary: paused
    - name: create
      match: audit.verb == 'create'
      summary: "{{ actor }} created {{ audit.objectRef.name }}"
    - name: bad-summary
      match: audit.verb == 'delete'
      summary: "deleted {{ audit.responseObject.metadata.name }}"
  eventRules:
    - name: erroring-match
      match: event.note.size() > 0
      summary: never
    - name: ready
      match: event.reason == 'Ready'
      summary: "{{ event.regarding.name }} is ready"
    - name: bad
      match: event.reason == 'Broken'
      summary: "{{ event.missing }}"
---
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata: {name: second}
spec:
  resource: {apiGroup: apps, kind: Deployment}
  auditRules:
    - name: any
      match: "true"
      summary: "{{ audit.verb }} by second"
"""


def audit(verb: str, **extra: Any) -> dict[str, Any]:
    record = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Event",
        "auditID": f"id-{verb}",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": "alice"},
        "objectRef": {
            "resource": "deployments",
            "apiGroup": "apps",
            "namespace": "ns",
            "name": "web",
            "apiVersion": "v1",
        },
        "responseStatus": {"code": 200},
    }
    record.update(extra)
    return record


def event(reason: str, **extra: Any) -> dict[str, Any]:
    record = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "reason": reason,
        "metadata": {"uid": f"ev-{reason}", "namespace": "ns"},
        "regarding": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "namespace": "ns",
        },
    }
    record.update(extra)
    return record


@pytest.fixture(scope="module", params=PATHS)
def translator(request: pytest.FixtureRequest) -> Translator:
    """The same tests on the reference path and on the fast path of the twins and the Cython
    extensions."""
    policies = parse_policy_text(POLICIES, "policies.yaml")
    return translator_on(
        request.param, lambda impl: Engine(policies, impl=impl), max_record_bytes=4096
    )


def run(translator: Translator, *records: Any) -> Output:
    out = Output()
    for r in records:
        translator.translate(r if isinstance(r, bytes) else orjson.dumps(r), out)
    return out


def test_first_matching_rule_of_first_policy_wins(translator: Translator) -> None:
    out = run(translator, audit("create"))
    assert [a["spec"]["summary"] for a in out.activities] == ["alice created web"]
    assert out.dead_letters == []


def test_audit_failure_dead_letters_and_next_policy_is_tried(translator: Translator) -> None:
    out = run(translator, audit("patch", requestObject={"spec": {}}))
    assert [a["spec"]["summary"] for a in out.activities] == ["patch by second"]
    (dlq,) = out.dead_letters
    assert dlq["errorType"] == "cel_match" and dlq["policyName"] == "first"
    assert dlq["ruleIndex"] == 0 and dlq["error"].startswith("rule 0 match: ")
    assert dlq["resource"] == {
        "apiGroup": "apps",
        "kind": "Deployment",
        "name": "web",
        "namespace": "ns",
    }
    assert dlq["tenant"] == {"type": "platform"}


def test_audit_summary_failure_is_cel_summary(translator: Translator) -> None:
    out = run(translator, audit("delete"))
    assert [d["errorType"] for d in out.dead_letters] == ["cel_summary"]
    assert "summary template evaluation failed" in out.dead_letters[0]["error"]
    assert [a["spec"]["summary"] for a in out.activities] == ["delete by second"]


def test_skips_and_stage_filter(translator: Translator) -> None:
    no_ref = audit("create")
    del no_ref["objectRef"]
    out = run(
        translator,
        no_ref,
        audit("create", stage="ResponseStarted"),
        audit("create", objectRef={"resource": "pods", "name": "p"}),
    )
    assert out.activities == [] and out.skipped == 3 and out.records == 3
    assert out.skip_reasons == {"no_object_ref": 1, "stage": 1, "no_matching_policy": 1}
    assert out.received == {"/": 1, "apps/deployments": 1, "/pods": 1}


def test_counts_for_metrics(translator: Translator) -> None:
    unknown = event("Ready", regarding={"apiVersion": "v1", "kind": "Pod", "name": "p"})
    out = run(translator, audit("create"), audit("update"), event("Ready"), unknown, b"{bad")
    assert out.policies == ["first", "second", "first"]  # one per activity, in order
    assert [a["spec"]["summary"] for a in out.activities][1] == "update by second"
    assert out.received == {"apps/deployments": 2}  # audit events only
    assert out.skip_reasons == {"no_matching_policy": 1} and out.errors == 1
    out.clear()
    assert out.activities == [] and out.policies == []


def test_event_match_error_skips_rule_and_summary_error_stops(translator: Translator) -> None:
    out = run(translator, event("Ready"), event("Broken"))
    assert [a["spec"]["summary"] for a in out.activities] == ["web is ready"]
    (dlq,) = out.dead_letters
    assert dlq["type"] == "k8s-event" and dlq["errorType"] == "cel_summary"
    assert dlq["ruleIndex"] == 2 and "tenant" not in dlq
    assert dlq["error"].startswith("failed to evaluate summary: summary template evaluation")


def test_event_list_and_bad_input_go_on(translator: Translator) -> None:
    event_list = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "EventList",
        "items": [audit("create"), {**audit("create"), "verb": 5}, audit("update")],
    }
    out = run(translator, b"{not json", event_list, b"[1, 2]", b"x" * 5000, audit("create"))
    assert len(out.activities) == 3
    reasons = [(d["type"], d["errorType"], d["error"][:20]) for d in out.dead_letters]
    assert [r[1] for r in reasons] == ["unmarshal"] * 4
    assert "exceeds the limit" in out.dead_letters[3]["error"]
    assert out.records == 7 and out.errors == 4


def test_translate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "p.yaml").write_text(POLICIES)
    lines = [
        orjson.dumps(audit("create")),
        b"",
        b"garbage",
        orjson.dumps(event("Ready")),
        orjson.dumps(audit("get")),
    ]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    code = main(
        [
            "translate",
            "--policies",
            str(tmp_path / "p.yaml"),
            "--input",
            str(tmp_path / "in.jsonl"),
            "--output",
            str(tmp_path / "out.jsonl"),
            "--dead-letter",
            str(tmp_path / "dlq.jsonl"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0
    activities = [orjson.loads(x) for x in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [a["spec"]["summary"] for a in activities] == [
        "alice created web",
        "web is ready",
        "get by second",
    ]
    assert len((tmp_path / "dlq.jsonl").read_bytes().splitlines()) == 1
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("records=4 activities=3 no_match=0 skipped=0 errors=1 ")
    assert "records/s=" in summary


def test_translate_rejects_invalid_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = yaml.safe_load_all(POLICIES)
    docs = list(bad)
    docs[0]["spec"]["auditRules"][0]["match"] = "audit.verb"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump_all(docs))
    assert main(["translate", "--policies", str(tmp_path / "p.yaml"), "--input", "-"]) == 1
    assert "match expression must return a boolean" in capsys.readouterr().err


def test_unwanted_records_are_skipped_from_routing_fields_alone(translator: Translator) -> None:
    """A record no policy wants is skipped before it is decoded, even if its body is bad."""
    unwanted = {**audit("create", objectRef={"resource": "pods", "name": "p"}), "verb": 5}
    wrong_stage = audit("create", stage="RequestReceived", requestReceivedTimestamp="bad")
    out = run(translator, unwanted, wrong_stage)
    assert out.skipped == 2 and out.dead_letters == []
    # keys in another case cannot be routed without decoding: the full decoder decides
    odd = {**audit("create"), "verb": 5}
    odd["ObjectRef"] = odd.pop("objectRef")
    out = run(translator, odd)
    assert [d["errorType"] for d in out.dead_letters] == ["unmarshal"]
