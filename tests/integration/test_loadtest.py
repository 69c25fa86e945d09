"""The load run in CI size: bundled nats-server, one chDB worker, a short headless Locust run.

Proves the pieces fit (locustfile, NATS bridge, worker, reports, summary); it measures nothing.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from processor.commands.loadtest import list_sizes, split_partitions
from tests.integration.conftest import missing_server

pytestmark = pytest.mark.integration

PARTITIONS = 4
LOADTEST = (sys.executable, "-m", "processor.commands.loadtest")


def require_locust() -> None:
    if importlib.util.find_spec("locust") is None:
        missing_server("locust is not installed (pip install '.[test]')")


def run_load(cmd: list[str], out: Path) -> None:
    """Run ``activity loadtest``; on failure, show its output and the end of every log."""
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    logs = "".join(
        f"--- {p.name} ---\n{p.read_text()[-3000:]}\n" for p in sorted(out.glob("*.log"))
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{logs}"


def test_headless_run_writes_reports_with_a_row_per_partition(tmp_path: Path, require_nats):
    require_locust()
    out = tmp_path / "report"
    cmd = [
        *LOADTEST, "--out", str(out),
        "--workers", "1",
        "--partition-count", str(PARTITIONS),
        "--users", "2",
        "--duration", "8",
        "--rate", "400",
        "--list-size", "20",
        "--corpus-size", "1000",
    ]  # fmt: skip
    run_load(cmd, out)

    for name in ("locust_stats.csv", "locust_failures.csv", "report.html", "summary.txt"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "locust_stats.csv").read_text().splitlines()))
    names = {(row["Type"], row["Name"]) for row in rows}
    for n in range(PARTITIONS):
        assert ("nats", f"list p{n}") in names or ("nats", f"audit p{n}") in names, names
        assert ("e2e", f"activity p{n}") in names, names
    failures = sum(int(row["Failure Count"]) for row in rows if row["Name"] != "Aggregated")
    assert failures == 0

    summary = orjson.loads((out / "summary.json").read_bytes())
    assert sorted(summary["partitions"]) == [f"p{n}" for n in range(PARTITIONS)]
    for part, figures in summary["partitions"].items():
        assert figures["published_records_per_s"] > 0, part
        assert figures["processed_records_per_s"] > 0, part
        assert figures["activities"] > 0, part
    assert summary["worker_errors"] == 0
    assert summary["lag_at_end"] == 0
    assert "p3" in (out / "summary.txt").read_text()


def test_http_transport_posts_event_lists_through_the_ingest(tmp_path: Path, require_nats):
    """``--transport http``: the ingest is started, every POST is answered 200, and the records
    it routed reach every partition's worker and become activities."""
    require_locust()
    out = tmp_path / "report"
    cmd = [
        *LOADTEST, "--out", str(out),
        "--transport", "http",
        "--workers", "1",
        "--partition-count", str(PARTITIONS),
        "--users", "2",
        "--duration", "6",
        "--rate", "400",
        "--http-list-sizes", "20-40",
        "--corpus-size", "1000",
    ]  # fmt: skip
    run_load(cmd, out)
    assert (out / "ingest.log").exists()

    rows = list(csv.DictReader((out / "locust_stats.csv").read_text().splitlines()))
    by_name = {(row["Type"], row["Name"]): row for row in rows}
    posts = by_name[("POST", "/audit")]
    assert int(posts["Request Count"]) > 0 and int(posts["Failure Count"]) == 0
    for n in range(PARTITIONS):
        assert ("ingest", f"records p{n}") in by_name, sorted(by_name)
        assert ("e2e", f"activity p{n}") in by_name, sorted(by_name)
    assert not any(kind == "nats" for kind, _ in by_name)
    records = sum(
        float(by_name[("ingest", f"records p{n}")]["Average Content Size"])
        * int(by_name[("ingest", f"records p{n}")]["Request Count"])
        for n in range(PARTITIONS)
    )
    assert 20 * int(posts["Request Count"]) <= round(records) <= 40 * int(posts["Request Count"])

    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["transport"] == "http" and summary["http_failures"] == 0
    assert sorted(summary["partitions"]) == [f"p{n}" for n in range(PARTITIONS)]
    for part, figures in summary["partitions"].items():
        assert figures["published_records_per_s"] > 0, part
        assert figures["processed_records_per_s"] > 0, part
    assert summary["worker_errors"] == 0 and summary["lag_at_end"] == 0


def test_http_list_sizes_are_checked():
    assert list_sizes("100-400") == "100-400" and list_sizes("7") == "7"
    for bad in ("0-3", "400-100", "x", "5-"):
        with pytest.raises(argparse.ArgumentTypeError):
            list_sizes(bad)


def test_workers_split_the_partitions_in_contiguous_ranges():
    assert split_partitions(8, 1) == ["0-7"]
    assert split_partitions(8, 2) == ["0-3", "4-7"]
    assert split_partitions(5, 3) == ["0", "1-2", "3-4"]
    assert split_partitions(8, 0) == []
    with pytest.raises(ValueError, match="every worker needs one"):
        split_partitions(2, 3)
