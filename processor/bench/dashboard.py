"""The Grafana dashboard (``deploy/grafana/activity-processor.json``) checked against a real
Prometheus: every query evaluated through the HTTP API, and a throughput-per-partition chart.

:func:`expressions` lists the dashboard's PromQL (panel targets and template variables; the static
test ``tests/unit/test_dashboard.py`` uses it too). :func:`check_dashboard` substitutes Grafana's
variables (``$namespace``/``$pod`` by their "All" value, ``$__rate_interval`` by the window
given), evaluates each expression at one instant and fails every query that returns no series,
plus the three the load run exists for: records/s for every loaded partition, consumer lag and
the commit latencies (ClickHouse flush, input ack / offset commit) as numbers. Exceptions, each
noted in the report: the reconciler's queries when no ``reconciler`` job is scraped, the Kafka
ones on another transport, and (unless ``strict``) queries of dead letters alone, whose series
appear with the first dead letter (their labels name its object and policy).
:func:`write_report` writes ``prometheus.html`` (a table of the queries and an inline-SVG chart
from ``/api/v1/query_range``) and ``dashboard.json``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from processor.bench.prometheus import Prometheus, PrometheusError
from processor.bench.svgchart import line_chart

__all__ = [
    "DashboardCheck",
    "QueryResult",
    "check_dashboard",
    "dashboard_path",
    "expressions",
    "run_check",
    "substitute",
    "throughput_chart",
    "write_report",
]

_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)
#: The per-partition throughput query (the chart's), by what it reads and how it groups.
THROUGHPUT = ("activity_processor_partition_records_total", "by (partition)")
LAG = "activity_processor_consumer_pending_messages"
#: The commit latencies: the ClickHouse insert, then settling the inputs (ack, offset commit).
COMMIT_LATENCIES = (
    "activity_processor_sink_flush_duration_seconds_bucket",
    "activity_processor_input_commit_duration_seconds_bucket",
)
KAFKA = "activity_processor_kafka_"
#: Metrics with no series until the first failure (labels known only then).
QUIET = ("activity_processor_dlq_events_published_total",)
_METRIC = re.compile(r"\b(activity_[a-z]+_[a-z0-9_]+)")


def dashboard_path() -> Path | None:
    """``deploy/grafana/activity-processor.json`` of the checkout (or of the working directory)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = root / "deploy" / "grafana" / "activity-processor.json"
        if candidate.is_file():
            return candidate
    return None


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and templating query of ``dashboard``."""
    for panel in _panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and text:
            yield f"variable {var['name']}", text


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def substitute(expr: str, dashboard: dict[str, Any], rate_interval: str) -> str:
    """``expr`` with Grafana's variables replaced: template variables by their "All" value
    (``allValue``, else ``.*``), ``$__rate_interval``/``$__interval``/``$__range`` by
    ``rate_interval``.

    Raises:
        ValueError: a variable the dashboard does not define.
    """
    values = {"__rate_interval": rate_interval, "__interval": rate_interval}
    values["__range"] = rate_interval
    for var in dashboard.get("templating", {}).get("list", []):
        values[var["name"]] = var.get("allValue") or ".*"

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        return str(values[name])

    return _VAR.sub(value, expr)


@dataclass
class QueryResult:
    """One evaluated dashboard query."""

    where: str
    expr: str
    promql: str
    series: int = 0
    numbers: int = 0  #: series with a finite value
    labels: list[dict[str, str]] = field(default_factory=list)
    error: str = ""
    note: str = ""  #: why "no series" is not a failure


@dataclass
class DashboardCheck:
    """All queries of the dashboard and what failed (``problems`` empty: the check passed)."""

    at: float
    window: str
    results: list[QueryResult]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def empty(self) -> list[str]:
        """``where`` of each query that returned no series (or an error)."""
        return [r.where for r in self.results if not r.series]

    def notes(self) -> dict[str, str]:
        """The queries without series that are not failures: where -> why."""
        return {r.where: r.note for r in self.results if not r.series and r.note}


def check_dashboard(
    prom: Prometheus,
    dashboard: dict[str, Any],
    at: float,
    window: float,
    partitions: Sequence[str],
    strict: bool = False,
    transport: str = "nats",
) -> DashboardCheck:
    """Evaluate every query of ``dashboard`` at ``at`` with rates over ``window`` seconds.

    ``partitions`` are those the run loaded (``"0"``, ``"1"``, ...): the per-partition throughput
    query must return a series for each. ``strict``: dead-letter queries must return series too.
    ``transport``: the workers' (``kafka`` or another); the Kafka queries are checked on Kafka.
    """
    rate = f"{max(round(window), 1)}s"
    jobs = {s["metric"].get("job") for s in prom.query("up", at)}
    results = [
        _evaluate(prom, dashboard, where, expr, rate, at) for where, expr in expressions(dashboard)
    ]
    for r in results:
        names = set(_METRIC.findall(r.expr))
        if r.series or r.error or not names:
            continue
        if "reconciler" not in jobs and all(n.startswith("activity_reconciler_") for n in names):
            r.note = "no reconciler in this run"
        elif transport != "kafka" and all(n.startswith(KAFKA) for n in names):
            r.note = f"Kafka only (this run: {transport})"
        elif not strict and names <= set(QUIET):
            r.note = "no dead letters in this run"
    problems = [f"{r.where}: {r.error or 'no series'}" for r in results if not (r.series or r.note)]
    problems += _required(results, partitions)
    return DashboardCheck(at, rate, results, problems)


def _evaluate(
    prom: Prometheus, dashboard: dict[str, Any], where: str, expr: str, rate: str, at: float
) -> QueryResult:
    result = QueryResult(where, expr, substitute(expr, dashboard, rate))
    label = None
    match = _LABEL_VALUES.match(result.promql)  # Grafana's label_values(expr, label)
    if match:
        result.promql, label = match.group(1), match.group(2)
    try:
        series = prom.query(result.promql, at)
    except PrometheusError as exc:
        result.error = str(exc)
        return result
    if label is not None:  # a variable: the series that carry the label
        series = [s for s in series if s["metric"].get(label)]
    result.series = len(series)
    result.numbers = sum(1 for s in series if math.isfinite(float(s["value"][1])))
    result.labels = [dict(s["metric"]) for s in series]
    return result


def _required(results: Sequence[QueryResult], partitions: Sequence[str]) -> list[str]:
    """The load run's own checks: throughput of every partition, lag, commit latency."""
    problems = []
    throughput = [r for r in results if all(part in r.expr for part in THROUGHPUT)]
    if not throughput:
        problems.append("no query of records/s by partition in the dashboard")
    for r in throughput:
        seen = {labels.get("partition") for labels in r.labels}
        missing = [p for p in partitions if p not in seen]
        if missing:
            problems.append(f"{r.where}: no series for partition {', '.join(missing)}")
    if not any(LAG in r.expr and r.series for r in results):
        problems.append(f"no consumer lag: no query of {LAG} returned a series")
    for metric in COMMIT_LATENCIES:
        latency = [r for r in results if metric in r.expr and "histogram_quantile" in r.expr]
        if not any(r.numbers for r in latency):
            problems.append(f"no commit latency: no quantile of {metric} returned a number")
    return problems


def throughput_chart(
    prom: Prometheus, dashboard: dict[str, Any], start: float, end: float, step: float
) -> str:
    """SVG of the dashboard's records/s-by-partition query over [start, end]."""
    expr = next((e for _, e in expressions(dashboard) if all(p in e for p in THROUGHPUT)), None)
    if expr is None:
        return "<p>The dashboard has no records/s by partition query.</p>"
    rate = f"{max(round(4 * step), 2)}s"  # Grafana's $__rate_interval floor: 4 scrape intervals
    series = prom.query_range(substitute(expr, dashboard, rate), start, end, step)
    lines = {
        f"partition {s['metric'].get('partition', '?')}": [
            (float(t), float(v)) for t, v in s["values"] if math.isfinite(float(v))
        ]
        for s in sorted(series, key=lambda s: _order(s["metric"].get("partition", "")))
    }
    return line_chart(lines, "Records/s per partition (Prometheus query_range)", "records/s")


def _order(partition: str) -> tuple[int, str]:
    return (int(partition), "") if partition.isdigit() else (1 << 30, partition)


def write_report(check: DashboardCheck, chart: str, out: Path, title: str) -> None:
    """``out/prometheus.html`` (chart and query table) and ``out/dashboard.json``."""
    rows = "\n".join(
        f"<tr class={'ok' if r.series else 'note' if r.note else 'bad'}>"
        f"<td>{escape(r.where)}</td><td>{r.series}</td><td>{r.numbers}</td>"
        f"<td><code>{escape(r.promql)}</code>"
        f"{'<br>' + escape(r.error or r.note) if r.error or r.note else ''}</td></tr>"
        for r in check.results
    )
    verdict = (
        f"all {len(check.results)} queries passed ({len(check.notes())} without series, noted)"
        if check.ok
        else "FAILED:<ul>" + "".join(f"<li>{escape(p)}</li>" for p in check.problems) + "</ul>"
    )
    html = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td{{padding:2px 8px;vertical-align:top}}
tr.bad{{background:#fdd}} tr.note{{background:#ffe}} code{{font-size:90%}}</style></head><body>
<h1>{escape(title)}</h1>
{chart}
<h2>Dashboard queries (rates over {check.window}, at the end of the load)</h2>
<p>{verdict}</p>
<table><tr><th>query</th><th>series</th><th>numbers</th><th>PromQL</th></tr>
{rows}
</table></body></html>
"""
    (out / "prometheus.html").write_text(html)
    data = {"at": check.at, "window": check.window, "problems": check.problems}
    data["queries"] = [asdict(r) for r in check.results]
    (out / "dashboard.json").write_text(json.dumps(data, indent=1))


def run_check(
    prom: Prometheus,
    started: float,
    out: Path,
    partitions: Sequence[str],
    interval: float,
    strict: bool = False,
    transport: str = "nats",
) -> dict[str, Any]:
    """The load run's check: every query over [started, now] and the report in ``out``.

    Returns ``{"queries": N, "problems": [...], "notes": {where: why}}`` for the run's summary.
    """
    path = dashboard_path()
    if path is None:
        return {"queries": 0, "problems": ["no deploy/grafana/activity-processor.json"]}
    dashboard = json.loads(path.read_text())
    time.sleep(2 * interval)  # the scrapes of the load's last second are stored
    at = time.time()
    check = check_dashboard(prom, dashboard, at, at - started, partitions, strict, transport)
    chart = throughput_chart(prom, dashboard, started, at, interval)
    write_report(check, chart, out, "activity loadtest: the dashboard through Prometheus")
    return {"queries": len(check.results), "problems": check.problems, "notes": check.notes()}
