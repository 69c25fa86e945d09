"""``activity bench --ingest``: its bodies, the baseline's messages and the printed table."""

from __future__ import annotations

import orjson

from processor.bench import generate
from processor.bench.ingest import PARTITIONS, event_lists, format_table, ingest_messages
from processor.ingest.batching import message_id
from processor.subjects import audit_partition

LIMIT = (1 << 20) - 512


def _records(n: int = 250) -> list[bytes]:
    return [orjson.dumps(r) for r in generate(n, seed=5, event_ratio=0.0)]


def test_bodies_are_audit_event_lists_of_the_records_in_order() -> None:
    records = _records()
    bodies = event_lists(records, 100)
    assert [n for _, n in bodies] == [100, 100, 50]
    items = []
    for body, n in bodies:
        doc = orjson.loads(body)
        assert (doc["kind"], doc["apiVersion"]) == ("EventList", "audit.k8s.io/v1")
        assert len(doc["items"]) == n
        items += doc["items"]
    assert [orjson.dumps(i) for i in items] == records


def test_baseline_messages_are_the_ingests_own() -> None:
    records = _records()
    bodies = event_lists(records, 100)
    lists = ingest_messages(bodies, LIMIT)
    assert len(lists) == len(bodies)
    seen = []
    for messages in lists:
        for subject, data, msg_id in messages:
            assert msg_id == message_id(subject, data)
            for item in orjson.loads(data)["items"]:
                assert subject == f"audit.k8s.p{audit_partition(item, PARTITIONS)}"
                seen.append(orjson.dumps(item))
    assert sorted(seen) == sorted(records)


def _phase(rate: float, p50: float, p99: float, **cpu: float) -> dict[str, float]:
    return {"records_per_s": rate, "mb_per_s": rate * 4400 / 1e6, "seconds": 2.0,
            "p50_ms": p50, "p99_ms": p99, **cpu}  # fmt: skip


CPU = {"ingest_cpu_pct": 97.0, "nats_server_cpu_pct": 20.0, "bench_cpu_pct": 5.0,
       "system_busy_pct": 70.0, "cores": 2.0}  # fmt: skip


def test_table_prints_both_paths_per_list_size_with_the_ratio() -> None:
    figures = {
        "records": 100_000,
        "mix": "standard",
        "record_bytes": 4400.0,
        "partitions": 8,
        "concurrency": 8,
        "lists": {
            "100": {
                "baseline": _phase(40_000.0, 8.0, 13.0),
                "ingest": _phase(10_000.0, 30.5, 74.25, **CPU),
            },
            "400": {
                "baseline": _phase(50_000.0, 38.0, 40.0),
                "ingest": _phase(12_500.0, 230.0, 260.0),
            },
        },
    }
    lines = format_table(figures).splitlines()
    assert lines[0] == (
        "corpus: 100,000 audit records, standard mix, 4.4 KB each on average; 8 partitions; "
        "8 concurrent senders"
    )
    assert lines[1].split() == ["path", "records/s", "MB/s", "p50", "ms", "p99", "ms", "vs",
                                "baseline"]  # fmt: skip
    assert lines[2] == "EventLists of 100"
    assert lines[3].split()[-5:] == ["40,000", "176", "8.0", "13.0", "1.00x"]
    assert lines[4].startswith("  activity ingest: POST /audit, 200 after PubAcks")
    assert lines[4].split()[-5:] == ["10,000", "44", "30.5", "74.2", "0.25x"]
    assert lines[5] == (
        "    CPU (% of one core): ingest 97% (97.0 µs per record), nats-server 20%, bench 5%; "
        "the 2 cores 70% busy"
    )
    assert lines[6] == "EventLists of 400"
    assert lines[8].split()[-1] == "0.25x" and len(lines) == 9
