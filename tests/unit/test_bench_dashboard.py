"""The pure parts of the dashboard check: Grafana variable substitution, the Prometheus scrape
configuration, the required checks and the SVG chart (the real Prometheus is in
``tests/integration/test_prometheus_dashboard.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from processor.bench.dashboard import (
    QueryResult,
    _required,
    dashboard_path,
    expressions,
    substitute,
)
from processor.bench.prometheus import Target, scrape_config
from processor.bench.svgchart import line_chart

ROOT = Path(__file__).resolve().parents[2]


def test_variables_become_all_values_and_the_window():
    board = {"templating": {"list": [{"name": "pod", "allValue": ".*"}, {"name": "ns"}]}}
    expr = 'sum(rate(x{pod=~"$pod", namespace=~"${ns}"}[$__rate_interval]))'
    assert substitute(expr, board, "30s") == 'sum(rate(x{pod=~".*", namespace=~".*"}[30s]))'
    with pytest.raises(ValueError, match=r"unknown dashboard variable \$node"):
        substitute('x{node="$node"}', board, "30s")


def test_every_query_of_the_dashboard_substitutes():
    path = dashboard_path()
    assert path == ROOT / "deploy" / "grafana" / "activity-processor.json"
    board = json.loads(path.read_text())
    for _, expr in expressions(board):
        assert "$" not in substitute(expr, board, "10s"), expr


def test_scrape_config_groups_targets_by_job_with_pod_labels():
    config = scrape_config(
        [
            Target("http://127.0.0.1:8081/metrics", "worker", "worker-0"),
            Target("http://127.0.0.1:8082/metrics", "worker", "worker-1"),
            Target("http://127.0.0.1:9000/metrics", "ingest", "ingest-0"),
        ],
        interval=1.0,
    )
    assert config["global"]["scrape_interval"] == "1s"
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert sorted(jobs) == ["ingest", "worker"]
    static = jobs["worker"]["static_configs"]
    assert [s["targets"] for s in static] == [["127.0.0.1:8081"], ["127.0.0.1:8082"]]
    assert static[1]["labels"] == {"namespace": "loadtest", "pod": "worker-1"}
    with pytest.raises(ValueError, match="http://host:port/path"):
        scrape_config([Target("127.0.0.1:1/metrics", "worker", "w")], 1.0)


def result(expr: str, labels: list[dict[str, str]], numbers: int | None = None) -> QueryResult:
    count = len(labels)
    return QueryResult("q", expr, expr, count, count if numbers is None else numbers, labels)


THROUGHPUT = "sum by (partition) (rate(activity_processor_partition_records_total[1m]))"
LAG = "sum(activity_processor_consumer_pending_messages)"
LATENCY = (
    "histogram_quantile(0.99, sum by (le) "
    "(rate(activity_processor_sink_flush_duration_seconds_bucket[1m])))"
)
COMMIT = LATENCY.replace("sink_flush", "input_commit")


def test_required_checks_name_a_missing_partition_lag_and_latency():
    good = [
        result(THROUGHPUT, [{"partition": "0"}, {"partition": "1"}]),
        result(LAG, [{}]),
        result(LATENCY, [{}]),
        result(COMMIT, [{"transport": "nats"}]),
    ]
    assert _required(good, ["0", "1"]) == []
    problems = _required(
        [
            result(THROUGHPUT, [{"partition": "0"}]),
            result(LAG, []),
            result(LATENCY, [{}], 0),
            result(COMMIT, [{}]),
        ],
        ["0", "1"],
    )
    assert problems == [
        "q: no series for partition 1",
        "no consumer lag: no query of activity_processor_consumer_pending_messages returned a "
        "series",
        "no commit latency: no quantile of activity_processor_sink_flush_duration_seconds_bucket "
        "returned a number",
    ]
    assert _required([], [])[0] == "no query of records/s by partition in the dashboard"


def test_chart_is_a_self_contained_svg_with_a_line_per_series():
    svg = line_chart({"partition 0": [(10, 0), (11, 5)], "p<1>": [(10, 1), (12, 2)]}, "t & u")
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 2
    assert "<script" not in svg and "href" not in svg
    assert "p&lt;1&gt;" in svg
