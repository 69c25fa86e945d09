"""Every query of the Grafana dashboard returns series from a real Prometheus after a load run.

CI size: a fresh nats-server, ``activity loadtest`` with one chDB worker and the reconciler
sidecar, Debian's ``prometheus`` scraping them every second, a few seconds of Locust load and one
malformed record (so the dead-letter panels have a dead letter to show). At the end the load run
evaluates every dashboard query through ``/api/v1/query`` (``processor.bench.dashboard``): each
must return a series (the Kafka consumer-group panel is noted instead: this run is on NATS), the
per-partition records/s one for every partition, and the commit latencies a number; the report
holds the throughput chart.

The same on Kafka: a tansu broker, ``activity run --transport kafka`` and ``activity reconcile
--transport kafka`` as child processes, Prometheus scraping them while audit records and a
malformed one are produced to the topic partitions; then every query is evaluated
(``check_dashboard``), the Kafka panel and the reconciler's included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from processor.bench.dashboard import (
    check_dashboard,
    dashboard_path,
    throughput_chart,
    write_report,
)
from processor.bench.e2e import metric_total
from processor.bench.local import free_port, http_status, stop_process
from processor.bench.prometheus import Target, prometheus_binary, prometheus_server
from processor.config import Settings
from processor.kafka.broker import TansuBroker
from processor.stream.partitions import audit_partition_subject
from processor.stream.topology import ensure_streams
from tests.integration import records
from tests.integration.conftest import missing_server
from tests.integration.kafka_worker_tools import kafka_settings, produce
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


@contextlib.contextmanager
def child(cmd: list[str], log: Path, port: int) -> Iterator[None]:
    """Run ``cmd`` (its output in ``log``) while the block runs, from its /readyz on ``port``."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        yield
    finally:
        stop_process(proc)


def kafka_worker(
    s: Settings, policy_dir: Path, tmp: Path, port: int
) -> contextlib.AbstractContextManager[None]:
    """``activity run --transport kafka`` with the topics and group of ``s``."""
    cmd = [
        sys.executable, "-m", "processor", "run",
        "--transport", "kafka",
        "--kafka-brokers", s.kafka_brokers,
        "--kafka-group", s.kafka_group,
        "--kafka-audit-topic", s.kafka_audit_topic,
        "--kafka-event-topic", s.kafka_event_topic,
        "--kafka-activity-topic", s.kafka_activity_topic,
        "--kafka-dead-letter-topic", s.kafka_dead_letter_topic,
        "--kafka-policy-topic", s.kafka_policy_topic,
        "--partition-count", str(s.partition_count),
        "--clickhouse-url", f"chdb://{tmp / 'chdb'}",
        "--migrate", "true",
        "--health-addr", f"127.0.0.1:{port}",
        "--policies", str(policy_dir),
        "--log-level", "WARNING",
    ]  # fmt: skip
    return child(cmd, tmp / "worker.log", port)


def kafka_reconciler(s: Settings, tmp: Path, port: int) -> contextlib.AbstractContextManager[None]:
    """``activity reconcile --transport kafka`` on the input topics of ``s``."""
    cmd = [
        sys.executable, "-m", "processor", "reconcile",
        "--transport", "kafka",
        "--kafka-brokers", s.kafka_brokers,
        "--kafka-audit-topic", s.kafka_audit_topic,
        "--kafka-event-topic", s.kafka_event_topic,
        "--partition-count", str(s.partition_count),
        "--consumer-name", f"reconciler-{s.kafka_group}",
        "--health-addr", f"127.0.0.1:{port}",
        "--log-level", "WARNING",
    ]  # fmt: skip
    return child(cmd, tmp / "reconciler.log", port)


def test_every_dashboard_query_returns_series_on_kafka(
    tmp_path: Path, kafka_broker: TansuBroker, policy_dir: Path
):
    require_prometheus()
    settings = kafka_settings(kafka_broker)
    assert settings.partition_count == PARTITIONS
    port, sidecar = free_port(), free_port()
    board = json.loads((dashboard_path() or Path("missing")).read_text())
    committed = "activity_processor_records_committed_total"
    targets = [
        Target(f"http://127.0.0.1:{port}/metrics", "worker", "worker-0"),
        Target(f"http://127.0.0.1:{sidecar}/metrics", "reconciler", "worker-0"),
    ]
    with (
        kafka_worker(settings, policy_dir, tmp_path, port),
        kafka_reconciler(settings, tmp_path, sidecar),
        prometheus_server(targets, tmp_path / "prometheus", 1.0) as prom,
    ):
        started, sent = time.time(), 0
        for round_ in range(4):  # a few seconds of input, so the rates have points
            batch = [records.audit(f"web-{round_}-{i}", seq=i) for i in range(30)]
            asyncio.run(produce(settings, "audit", [*batch, b"{not json"]))
            sent += len(batch) + 1
            time.sleep(1.0)
        deadline = time.monotonic() + 60
        while metric_total(port, committed) < sent:
            assert time.monotonic() < deadline, f"committed {metric_total(port, committed)}"
            time.sleep(0.1)
        time.sleep(2.0)  # the last scrapes are stored
        at = time.time()
        parts = [str(n) for n in range(PARTITIONS)]
        check = check_dashboard(prom, board, at, at - started, parts, True, "kafka")
        chart = throughput_chart(prom, board, started, at, 1.0)
        write_report(check, chart, tmp_path, "kafka")
        reconciled = metric_total(sidecar, "activity_reconciler_messages_total")

    assert check.problems == [], check.problems
    assert [r.where for r in check.results if not r.series] == []
    assert reconciled > 0  # the reconciler read the topic (its series are not just the zeros)
    by_panel = by_where(check)
    assigned = by_panel["panel 'Kafka partitions per pod and rebalances' A"].labels
    assert {"pod": "worker-0", "topic": settings.kafka_audit_topic} in assigned
    commit = by_panel["panel 'Input commit: NATS acks / Kafka offset commit' B"]
    assert commit.labels == [{"transport": "kafka"}] and commit.numbers == 1
    dead = by_panel["panel 'Dead letters/s by error type' A"].labels
    assert {"event_type": "audit", "error_type": "unmarshal"} in dead
    assert (tmp_path / "prometheus.html").read_text().count("<polyline") == PARTITIONS


def by_where(check: Any) -> dict[str, Any]:
    return {r.where: r for r in check.results}
