"""The e2e bench's messages: every record once, EventLists per partition subject, origin ids."""

from __future__ import annotations

import orjson

from processor.bench import generate
from processor.bench.e2e import Corpus, format_table, publish_windows, wait_for_total


def _corpus() -> Corpus:
    return Corpus(list(generate(700, seed=11)))


def _origin(record: dict) -> str:
    return record.get("auditID") or record["metadata"]["uid"]


def test_single_record_messages_are_the_records_themselves():
    corpus = _corpus()
    messages = corpus.messages(1)
    assert len(messages) == len(corpus.records)
    for (origins, subject, payload), record in zip(messages, corpus.records, strict=True):
        assert orjson.loads(payload) == record
        assert origins == [_origin(record)]
        assert subject == corpus.subject(record)
    assert corpus.singles() == [(s, p) for _, s, p in messages]


def test_lists_group_audit_records_per_subject_and_carry_their_origins():
    corpus = _corpus()
    messages = corpus.messages(50)
    seen: list[str] = []
    lists = 0
    for origins, subject, payload in messages:
        body = orjson.loads(payload)
        if subject.startswith("events."):
            assert body["kind"] != "EventList" and origins == [_origin(body)]
        else:
            lists += 1
            assert body["kind"] == "EventList" and 1 <= len(body["items"]) <= 50
            assert origins == [_origin(item) for item in body["items"]]
            assert {corpus.subject(item) for item in body["items"]} == {subject}
        seen += origins
    assert lists >= 4  # one partial list per partition at least
    assert sorted(seen) == sorted(_origin(r) for r in corpus.records)  # each record once
    assert corpus.lists(50) == [(s, p) for _, s, p in messages]


#: The phases' figures the table tests share (each adds its counts and what it checks).
PHASES: dict[str, object] = {
    "stock_fetch_ack_msgs_per_s": 10_000.0,
    "raw_pull_consumer_msgs_per_s": 30_000.0,
    "worker_eventlist_records_per_s": 22_000.0,
    "worker_eventlist_drain_s": 5.0,
    "worker_single_records_per_s": 19_000.0,
    "worker_single_drain_s": 6.0,
    "live_capacity_records_per_s": 16_000.0,
    "live_capacity_limit": "none",
    "latency_rate_records_per_s": 8_000.0,
    "p50_ms": 9.0,
    "p99_ms": 50.0,
    "half_drained_rate_records_per_s": 9_500.0,
    "half_drained_p50_ms": 10.0,
    "half_drained_p99_ms": 60.0,
}


def test_table_reports_the_eventlist_latency_when_measured():
    figures = {
        **PHASES,
        "records": 100_000,
        "mix": "production",
        "samples": 80_000.0,
        "half_drained_samples": 95_000.0,
    }
    before = format_table(figures, 100).splitlines()
    assert before[0] == "corpus: 100,000 records, production mix"
    assert not any(line.startswith("latency with EventLists") for line in before)
    figures |= {
        "half_eventlist_rate_records_per_s": 11_000.0,
        "half_eventlist_p50_ms": 12.5,
        "half_eventlist_p99_ms": 31.3,
        "half_eventlist_samples": 100_000.0,
    }
    last = format_table(figures, 100).splitlines()[-1]
    assert last == (
        "latency with EventLists of 100 at half their rate, 11,000 records/s: "
        "p50 12.5 ms, p99 31.3 ms (100000 activities)"
    )
    figures |= {
        "transport_p50_ms": 3.0,
        "transport_p99_ms": 9.5,
        "half_eventlist_transport_p50_ms": 2.5,
        "half_eventlist_transport_p99_ms": 17.25,
    }
    lines = format_table(figures, 100).splitlines()
    transport = [line for line in lines if "nats-server alone" in line]
    assert transport == [
        "  nats-server alone at that rate (no worker; a consumer that only acks): "
        "p50 3.0 ms, p99 9.5 ms",
        "  nats-server alone at that rate (no worker; a consumer that only acks): "
        "p50 2.5 ms, p99 17.2 ms",
    ]
    # each under its own phase: the first latency line, and the EventList one (last)
    assert lines.index(transport[0]) == 1 + next(
        i for i, line in enumerate(lines) if line.startswith("latency publish -> ACTIVITIES")
    )
    assert lines[-1] == transport[1]


def test_table_reports_each_drain_s_cpu_under_its_worker_row():
    figures = {
        **PHASES,
        "records": 1_000,
        "samples": 1_000.0,
        "half_drained_samples": 1_000.0,
        "eventlist_drain_worker_cpu_pct": 61.0,
        "eventlist_drain_nats_server_cpu_pct": 55.0,
        "eventlist_drain_system_busy_pct": 80.0,
        "eventlist_drain_cores": 2.0,
        "single_drain_worker_cpu_pct": 97.0,
    }
    lines = format_table(figures, 100).splitlines()
    lists = lines.index(next(line for line in lines if line.startswith("worker, EventList")))
    assert lines[lists + 1] == (
        "  CPU meanwhile (% of one core): worker 61%, nats-server 55%; "
        "the 2 cores 80% busy, 0% stolen by the hypervisor"
    )
    assert lines[lists + 2].startswith("worker, single-record messages")
    assert lines[lists + 3] == "  CPU meanwhile (% of one core): worker 97%"


def test_publish_windows_bound_messages_and_bytes_and_keep_order():
    messages = [(f"s.{i}", b"x" * size) for i, size in enumerate([3, 3, 3, 10, 1, 1, 1, 1])]
    runs = list(publish_windows(messages, window=3, window_bytes=7))
    assert [m for run in runs for m in run] == messages
    # at most 3 messages and 7 bytes a run, except a larger message alone
    assert [[len(p) for _, p in run] for run in runs] == [[3, 3], [3], [10], [1, 1, 1], [1]]


def test_wait_for_total_reads_until_the_target_and_returns_the_last_reading():
    readings = iter([10.0, 20.0, 40.0, 80.0, 120.0])
    seen: list[float] = []

    def read() -> float:
        seen.append(next(readings))
        return seen[-1]

    assert wait_for_total(read, 100.0, 10.0) == 120.0
    assert seen == [10.0, 20.0, 40.0, 80.0, 120.0]
