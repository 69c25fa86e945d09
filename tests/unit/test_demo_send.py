"""How ``activity demo`` sends its scenario to the ingest: apiserver batches, Events alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from processor.demo import ScenarioRecord, scenario
from processor.demo.run import DemoResult
from processor.demo.send import BATCH_MAX_SIZE, BATCH_MAX_WAIT, Sent, requests

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _time(payload: dict) -> datetime:
    key = "requestReceivedTimestamp" if "auditID" in payload else "eventTime"
    return datetime.fromisoformat(payload[key].replace("Z", "+00:00"))


def test_every_record_is_sent_once_in_time_order() -> None:
    records = scenario(NOW)
    reqs = requests(records)
    sent: list[dict] = []
    for req in reqs:
        doc = orjson.loads(req.body)
        if req.path == "/audit":
            assert (doc["kind"], doc["apiVersion"]) == ("EventList", "audit.k8s.io/v1")
            assert req.records == len(doc["items"]) >= 1
            sent += doc["items"]
        else:
            assert req.path == "/events" and req.records == 1
            assert doc["apiVersion"] == "events.k8s.io/v1"
            sent.append(doc)
    assert sorted(map(orjson.dumps, sent)) == sorted(orjson.dumps(r.payload) for r in records)
    audit = [r.payload for r in records if r.kind == "audit"]
    assert [i for req in reqs if req.path == "/audit" for i in orjson.loads(req.body)["items"]] == (
        audit
    )


def test_audit_batches_close_by_size_and_by_wait() -> None:
    for req in requests(scenario(NOW)):
        if req.path == "/audit":
            times = [_time(i) for i in orjson.loads(req.body)["items"]]
            assert times[-1] - times[0] <= timedelta(seconds=BATCH_MAX_WAIT)

    start = NOW - timedelta(minutes=5)

    def audit(offset: float, n: int) -> ScenarioRecord:
        stamp = (start + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return ScenarioRecord("audit", {"auditID": str(n), "requestReceivedTimestamp": stamp})

    burst = [audit(0.001 * n, n) for n in range(BATCH_MAX_SIZE + 5)]
    assert [r.records for r in requests(burst)] == [BATCH_MAX_SIZE, 5]
    spaced = [audit(0, 0), audit(0.5, 1), audit(1.0, 2), audit(1.2, 3), audit(5, 4)]
    assert [r.records for r in requests(spaced)] == [3, 1, 1]


def test_an_event_goes_before_the_open_batch() -> None:
    records = scenario(NOW)
    first_event = next(i for i, r in enumerate(records) if r.kind == "event")
    assert first_event > 0 and records[first_event - 1].kind == "audit"
    reqs = requests(records[: first_event + 1])
    assert [r.path for r in reqs[-2:]] == ["/events", "/audit"]
    assert orjson.loads(reqs[-1].body)["items"][-1] == records[first_event - 1].payload


def test_results_add_up_and_the_webhook_line_names_the_url() -> None:
    sent = Sent()
    sent.add({"accepted": 7, "messages": 3, "rejectedCount": 0})
    sent.add({"accepted": 1, "messages": 1, "rejectedCount": 0})
    assert (sent.requests, sent.accepted, sent.messages, sent.rejected) == (2, 8, 4, 0)
    result = DemoResult(4, 8, 2, 0, [], webhook="http://127.0.0.1:4100/audit", requests=2)
    assert result.webhook_line().startswith("webhook: http://127.0.0.1:4100/audit (2 requests")
