"""The Grafana dashboard queries only metrics the worker and the reconciler export.

Every PromQL expression of ``deploy/grafana/activity-processor.json`` (panel targets and template
variables) is scanned for metric names of the project's namespaces; each must be a series that
``processor.metrics.Metrics`` or ``processor.reconciler.metrics.ReconcilerMetrics`` registers
(counters as ``_total``, histograms as ``_bucket``/``_sum``/``_count``, info as ``_info``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from processor.bench.dashboard import expressions
from processor.metrics import Metrics
from processor.reconciler.metrics import ReconcilerMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "activity-processor.json"
METRICS_DOC = ROOT / "docs" / "metrics.md"
PREFIXES = ("activity_processor_", "activity_reconciler_")
_NAME = re.compile(r"(?<![A-Za-z0-9_:])(activity_(?:processor|reconciler)_[A-Za-z0-9_:]+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}


def series_names(registry: CollectorRegistry) -> set[str]:
    """The series names a registry exposes, including those of labelled metrics without samples."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def exported() -> set[str]:
    """Every series the worker and the reconciler export."""
    return series_names(Metrics().registry) | series_names(ReconcilerMetrics().registry)


def metric_names(expr: str) -> set[str]:
    """The project's metric names in a PromQL expression (label values in quotes ignored)."""
    return set(_NAME.findall(_STRING.sub('""', expr)))


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_metric_names_are_found_in_promql():
    expr = (
        "histogram_quantile(0.99, sum by (le) (rate(activity_processor_sink_batch_rows_bucket"
        '{pod=~"activity_processor_fake"}[5m]))) / activity_reconciler_pending_events'
    )
    assert metric_names(expr) == {
        "activity_processor_sink_batch_rows_bucket",
        "activity_reconciler_pending_events",
    }


def test_series_names_cover_suffixes_of_unused_labelled_metrics():
    names = exported()
    assert "activity_processor_sink_batch_rows_bucket" in names
    assert "activity_processor_dlq_events_published_total" in names
    assert "activity_processor_build_info" in names
    assert "activity_processor_dlq_events_published" not in names


def test_every_dashboard_query_uses_exported_metrics_only(dashboard):
    known = exported()
    problems = []
    count = 0
    for where, expr in expressions(dashboard):
        count += 1
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no activity_processor_/activity_reconciler_ metric")
        problems += [f"{where}: {name} is not exported" for name in sorted(names - known)]
    assert count > 20
    assert not problems, "\n".join(problems)


def test_dashboard_covers_throughput_lag_latency_batches_errors_and_dlq(dashboard):
    used = set().union(*(metric_names(expr) for _, expr in expressions(dashboard)))
    for name in (
        "activity_processor_partition_records_total",
        "activity_processor_consumer_pending_messages",
        "activity_processor_sink_flush_duration_seconds_bucket",
        "activity_processor_sink_batch_rows_bucket",
        "activity_processor_events_errored_total",
        "activity_processor_dlq_events_published_total",
    ):
        assert name in used, name


def test_metrics_doc_lists_every_exported_metric():
    doc = METRICS_DOC.read_text()
    registries = (Metrics().registry, ReconcilerMetrics().registry)
    missing = [
        family.name
        for registry in registries
        for family in registry.collect()
        if f"`{family.name}" not in doc
    ]
    assert not missing, f"not in docs/metrics.md: {missing}"
