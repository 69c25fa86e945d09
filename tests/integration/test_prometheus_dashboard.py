"""Every query of the Grafana dashboard returns series from a real Prometheus after a load run.

CI size: a fresh nats-server, ``activity loadtest`` with one chDB worker and the reconciler
sidecar, Debian's ``prometheus`` scraping them every second, a few seconds of Locust load and one
malformed record (so the dead-letter panels have a dead letter to show). At the end the load run
evaluates every dashboard query through ``/api/v1/query`` (``processor.bench.dashboard``): each
must return a series (the Kafka consumer-group panel is noted instead: this run is on NATS), the
per-partition records/s one for every partition, and the commit latencies a number; the report
holds the throughput chart.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from processor.bench.prometheus import prometheus_binary
from processor.stream.partitions import audit_partition_subject
from processor.stream.topology import ensure_streams
from tests.integration.conftest import missing_server
from tests.integration.test_loadtest import require_locust

pytestmark = pytest.mark.integration

PARTITIONS = 4


def require_prometheus() -> None:
    if prometheus_binary() is None:
        missing_server("prometheus is not installed (apt-get install prometheus)")


async def publish_poison(url: str) -> None:
    """A record that is not JSON on partition 0: the worker dead-letters it (``unmarshal``)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        await js.publish(audit_partition_subject(0), b"{not json")
    finally:
        await nc.drain()


def test_every_dashboard_query_returns_series_after_a_load_run(tmp_path: Path, fresh_nats_server):
    require_locust()
    require_prometheus()
    url = str(fresh_nats_server.url)
    asyncio.run(publish_poison(url))
    out = tmp_path / "report"
    cmd = [
        sys.executable, "-m", "processor.commands.loadtest", "--out", str(out),
        "--nats-url", url,
        "--workers", "1",
        "--reconciler",
        "--prometheus", "yes",
        "--partition-count", str(PARTITIONS),
        "--users", "2",
        "--duration", "6",
        "--rate", "400",
        "--list-size", "20",
        "--corpus-size", "1000",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    logs = "".join(f"--- {p.name} ---\n{p.read_text()[-3000:]}\n" for p in out.glob("*.log"))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{logs}"

    report = json.loads((out / "dashboard.json").read_text())
    queries = report["queries"]
    assert len(queries) > 40
    assert report["problems"] == []
    empty = {q["where"]: q["note"] for q in queries if not q["series"]}
    kafka = "Kafka only (this run: nats)"  # the consumer-group panel
    assert empty == {f"panel 'Kafka partitions per pod and rebalances' {r}": kafka for r in "AB"}
    by_panel = {q["where"]: q for q in queries}
    per_partition = by_panel["panel 'Records/s per partition' A"]
    assert sorted(s["partition"] for s in per_partition["labels"]) == [
        str(n) for n in range(PARTITIONS)
    ]
    dead = by_panel["panel 'Dead letters/s by error type' A"]["labels"]
    assert {"event_type": "audit", "error_type": "unmarshal"} in dead
    assert by_panel["panel 'ClickHouse flush duration' B"]["numbers"] > 0
    commit = by_panel["panel 'Input commit: NATS acks / Kafka offset commit' B"]
    assert commit["numbers"] == 1 and commit["labels"] == [{"transport": "nats"}]

    html = (out / "prometheus.html").read_text()
    assert html.count("<polyline") == PARTITIONS
    assert "<script" not in html
    summary = (out / "summary.txt").read_text()
    assert "every query returned series" in summary
