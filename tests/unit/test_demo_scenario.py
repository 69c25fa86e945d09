"""The ``activity demo`` scenario: deterministic, valid, and it tells the intended story.

The expected summaries are what the bundled policies make of the scenario; they are the story as
a timeline (see :mod:`processor.demo.scenario`), so a change to a policy's wording or to the
story shows up here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from processor.demo import ScenarioRecord, scenario
from processor.engine import Engine
from processor.policy import load_policies
from processor.policy.bundled import bundled_policy_paths
from processor.query.history import VERBS, render, to_change
from processor.records import decode_audit, decode_event
from processor.translate import Output, Translator

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def scheduled(pod: str, node: str) -> str:
    """The summary of the scheduler's Scheduled Event for a Pod of the shop namespace."""
    return f"Pod {pod} in shop was scheduled: Successfully assigned shop/{pod} to {node}"


EXPECTED = [
    "alice created Namespace shop",
    "alice created Deployment web in shop with 2 replicas",
    "Deployment web in shop: Scaled up replica set web-7d9f8c6b5 to 2",
    scheduled("web-7d9f8c6b5-zqg2l", "worker-1"),
    scheduled("web-7d9f8c6b5-d5lvp", "worker-2"),
    "alice created ClusterIP Service web in shop",
    "bob created ConfigMap web-config in shop",
    "bob created Secret db-credentials in shop",
    "alice scaled Deployment web in shop from 2 to 5 replicas",
    "Deployment web in shop: Scaled up replica set web-7d9f8c6b5 to 5 from 2",
    scheduled("web-7d9f8c6b5-bgxs8", "worker-3"),
    scheduled("web-7d9f8c6b5-6ps4x", "worker-1"),
    scheduled("web-7d9f8c6b5-c7fvs", "worker-2"),
    "alice created Deployment worker in shop with 1 replica",
    "Deployment worker in shop: Scaled up replica set worker-5c6d7f4b8 to 1",
    scheduled("worker-5c6d7f4b8-lgsk6", "worker-3"),
    "Pod worker-5c6d7f4b8-lgsk6 in shop is crash-looping: Back-off restarting failed container app "
    "in pod worker-5c6d7f4b8-lgsk6_shop(e28af604-65f4-4986-9818-9af4f3d74f82)",
    "bob changed [LOG_LEVEL] in ConfigMap web-config in shop",
    "bob updated Secret db-credentials in shop",
    "alice updated Deployment worker in shop to image registry.example.com/shop/worker:1.4.3",
    "Deployment worker in shop: Scaled up replica set worker-6f8b9d7c4 to 1",
    scheduled("worker-6f8b9d7c4-gwvxt", "worker-1"),
    "Deployment worker in shop: Scaled down replica set worker-5c6d7f4b8 to 0 from 1",
    "alice read Secret db-credentials in shop",
    "alice created CronJob nightly-report in shop on schedule 0 2 * * *",
    "alice triggered CronJob nightly-report in shop by hand as Job nightly-report-manual-j95",
    scheduled("nightly-report-manual-j95-26lrh", "worker-2"),
    "Job nightly-report-manual-j95 in shop completed",
    "alice granted ClusterRole edit to User bob in shop (binding bob-configmaps)",
    "carol created Circuit ams-fra-1 from provider zayo between Site ams1 and Site fra1",
    'Circuit ams-fra-1 is not ready: Provider "zayo" not found',
    "carol registered Provider Zayo (Transit)",
    "Provider Zayo is ready",
    "Circuit ams-fra-1 is ready",
    "carol updated Circuit ams-fra-1",
    "carol placed Node n1 in rack r7",
    "Node n1 is ready",
    "Node worker-3 is not ready: Node worker-3 status is now: NodeNotReady",
    "Node worker-3 is ready",
    "alice cordoned Node worker-3",
    "alice opened an exec session in Pod web-7d9f8c6b5-zqg2l in shop",
    "alice deleted Deployment worker in shop",
]


def _translate(records: list[ScenarioRecord]) -> Output:
    translator = Translator(Engine(load_policies(bundled_policy_paths())))
    out = Output()
    for record in records:
        translator.translate(orjson.dumps(record.payload), out, record.kind)
    return out


@pytest.fixture(scope="module")
def records() -> list[ScenarioRecord]:
    return scenario(NOW)


def test_same_seed_and_now_give_the_same_records(records: list[ScenarioRecord]) -> None:
    again = scenario(NOW, seed=7)
    assert [orjson.dumps(r.payload) for r in again] == [orjson.dumps(r.payload) for r in records]
    other = scenario(NOW, seed=8)
    assert [r.payload.get("auditID") for r in other] != [r.payload.get("auditID") for r in records]


def test_records_cover_the_last_half_hour_in_time_order(records: list[ScenarioRecord]) -> None:
    assert 60 <= len(records) <= 150
    times = [datetime.fromisoformat(r.time.replace("Z", "+00:00")) for r in records]
    assert times == sorted(times)
    assert NOW - timedelta(minutes=31) <= times[0] and times[-1] <= NOW
    assert {r.kind for r in records} == {"audit", "event"}


def test_records_have_the_published_shapes(records: list[ScenarioRecord]) -> None:
    audit_ids = set()
    for record in records:
        payload = record.payload
        if record.kind == "audit":
            assert payload["apiVersion"] == "audit.k8s.io/v1" and payload["kind"] == "Event"
            assert payload["stage"] == "ResponseComplete"
            assert payload["level"] in ("RequestResponse", "Metadata")
            assert len(payload["requestReceivedTimestamp"]) == len("2026-11-20T11:30:00.000000Z")
            assert payload["sourceIPs"] and payload["userAgent"]
            audit_ids.add(payload["auditID"])
            decode_audit(payload)
        else:
            assert payload["apiVersion"] == "events.k8s.io/v1"
            assert payload["regarding"]["kind"] and payload["reportingController"]
            decode_event(payload)
    assert len(audit_ids) == sum(r.kind == "audit" for r in records)


def test_story_reads_as_intended(records: list[ScenarioRecord]) -> None:
    out = _translate(records)
    assert out.dead_letters == []
    assert [a["spec"]["summary"] for a in out.activities] == EXPECTED
    assert out.skipped + out.no_match > len(out.activities), "most records are noise"


def test_inventory_thread_follows_the_circuit_lifecycle(records: list[ScenarioRecord]) -> None:
    out = _translate(records)
    inventory = [
        a["spec"]["summary"]
        for a in out.activities
        if a["spec"]["resource"].get("apiGroup") == "inventory.miloapis.com"
        and a["spec"]["resource"]["kind"] in ("Circuit", "Provider")
    ]
    assert inventory == [
        "carol created Circuit ams-fra-1 from provider zayo between Site ams1 and Site fra1",
        'Circuit ams-fra-1 is not ready: Provider "zayo" not found',
        "carol registered Provider Zayo (Transit)",
        "Provider Zayo is ready",
        "Circuit ams-fra-1 is ready",
        "carol updated Circuit ams-fra-1",
    ]
    events = [
        r.payload for r in records if r.kind == "event" and "annotations" in r.payload["metadata"]
    ]
    not_ready = next(e for e in events if e["reason"] == "NotReady")
    assert not_ready["metadata"]["namespace"] == "default"
    assert not_ready["metadata"]["annotations"]["inventory.miloapis.com/condition-reason"] == (
        "ProviderNotFound"
    )


def test_circuit_history_shows_every_version(records: list[ScenarioRecord]) -> None:
    """What ``activity history circuits ams-fra-1 --diff`` shows once the raw audit is stored."""
    changes = [
        to_change(r.payload)
        for r in records
        if r.kind == "audit"
        and r.payload["objectRef"]["resource"] == "circuits"
        and r.payload["objectRef"].get("name") == "ams-fra-1"
        and r.payload["verb"] in VERBS
    ]
    assert [(c.verb, c.user) for c in changes] == [
        ("create", "carol"),
        ("patch", "system:serviceaccount:inventory-system:inventory-controller-manager"),
        ("patch", "system:serviceaccount:inventory-system:inventory-controller-manager"),
        ("patch", "carol"),
    ]
    assert all(c.object is not None and c.object["kind"] == "Circuit" for c in changes)
    text = "\n".join(render(changes))
    assert "(no object recorded" not in text and "(removed)" not in text
    assert "Created resource" in text
    assert '+        "reason": "ProviderNotFound",' in text
    assert '+        "reason": "Accepted",' in text
    assert "Changes: spec\n" in text and '+    "bandwidthMbps": 100000,' in text
