"""The read API under load: ``activity serve`` on a generated chDB store, Locust's ``ApiReader``
users (``loadtest/queryfile.py``) against it, p50/p95/p99 per query type.

    python loadtest/serve_queries.py --activities 1000000 --users 10 --duration 60 --out serve-load

Steps: a chDB store in ``--out``/chdb (kept; a second run with the same ``--out`` reuses it)
with ``--activities`` generated activities (``processor.bench.query.generate``, spread over the
last day, 50 organisations, 2,000 users), ``--audit-logs`` audit logs and ``--events`` Events
(the resources, verbs and codes upstream's k6 templates ask for, over the last day); then
``activity serve`` on it (plain HTTP on a loopback port, a generated bearer token) and a headless
Locust run of ``--users`` closed-loop readers for ``--duration`` seconds. Locust's CSV and HTML
reports are written to ``--out``; the table printed at the end (also ``summary.txt``) has one row
per query type. Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import csv
import random
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from processor.bench.local import free_port, http_status, stop_process
from processor.bench.query import generate
from processor.query.timeparse import NS, format_rfc3339
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate

HERE = Path(__file__).resolve().parent
RESOURCES = (
    *(("", "pods"), ("", "services"), ("", "configmaps"), ("", "secrets"), ("", "namespaces")),
    *(("apps", "deployments"), ("apps", "statefulsets"), ("batch", "jobs")),
)
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
CODES = (200, 200, 200, 201, 404, 409, 500)
REASONS = ("BackOff", "Pulled", "Started", "NodeNotReady", "Scheduled")
WARNINGS = ("BackOff", "NodeNotReady")
GV = "/apis/activity.miloapis.com/v1alpha1"


def audit_rows(count: int, seed: int = 1) -> list[bytes]:
    """``count`` audit events spread over the last day."""
    rng = random.Random(seed)
    now = time.time_ns()
    rows = []
    for i in range(count):
        group, resource = rng.choice(RESOURCES)
        when = now - 60 * NS - rng.randrange(86_000) * NS
        rows.append(orjson.dumps({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete",
            "auditID": f"{rng.getrandbits(32):08x}-0000-4000-8000-{i:012d}",
            "verb": rng.choice(VERBS),
            "user": {"username": f"user-{rng.randrange(2000)}@example.com"},
            "objectRef": {"apiGroup": group, "resource": resource, "name": f"obj-{i % 5000}",
                          "namespace": f"ns-{i % 300}"},
            "responseStatus": {"code": rng.choice(CODES)},
            "requestReceivedTimestamp": format_rfc3339(when, 6),
        }))  # fmt: skip
    return rows


def event_rows(count: int, seed: int = 2) -> list[bytes]:
    """``count`` Kubernetes Events spread over the last day."""
    rng = random.Random(seed)
    now = time.time_ns()
    rows = []
    for i in range(count):
        reason = rng.choice(REASONS)
        rows.append(orjson.dumps({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"ev-{i}", "namespace": f"ns-{i % 300}", "uid": f"ev-{i}"},
            "eventTime": format_rfc3339(now - 60 * NS - rng.randrange(86_000) * NS, 6),
            "regarding": {"apiVersion": "v1", "kind": "Node" if reason == "NodeNotReady" else "Pod",
                          "name": f"obj-{i % 5000}", "namespace": f"ns-{i % 300}"},
            "reason": reason, "type": "Warning" if reason in WARNINGS else "Normal",
            "note": f"event {i}", "reportingController": "kubelet",
        }))  # fmt: skip
    return rows


def fill_store(path: Path, activities: int, audit_logs: int, events: int) -> None:
    """Create and fill the store at ``path`` unless it already holds data."""
    sink = ChdbSink(path)
    try:
        migrate(sink)
        sink.open()
        if sink.query("SELECT count() AS n FROM audit.activities")[0]["n"]:
            print(f"reusing the store at {path}", file=sys.stderr)
            return
        generate(sink, activities, days=1.0)
        for table, rows in (
            ("audit_logs", audit_rows(audit_logs)),
            ("k8s_events", event_rows(events)),
        ):
            for start in range(0, len(rows), 50_000):
                sink.insert(table, rows[start : start + 50_000], f"load-{table}-{start}")
    finally:
        sink.close()


def preflight(url: str, token: str) -> list[str]:
    """One query of each type; the names of those that found nothing (a load run over empty
    answers would measure nothing)."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    window = {"startTime": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "endTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "limit": 10}  # fmt: skip
    posts = {
        "AuditLogQuery": ("auditlogqueries", {**window, "filter": "objectRef.resource == 'pods'"}),
        "ActivityQuery": ("activityqueries", {**window, "filter": "spec.resource.kind == 'Pod'"}),
        "EventQuery": ("eventqueries", {**window, "fieldSelector": "type=Warning"}),
    }
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    empty = []
    for kind, (plural, spec) in posts.items():
        body = orjson.dumps({"apiVersion": "activity.miloapis.com/v1alpha1", "kind": kind,
                             "metadata": {"name": "preflight"}, "spec": spec})  # fmt: skip
        request = urllib.request.Request(f"{url}{GV}/{plural}", body, headers, method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            if not orjson.loads(resp.read())["status"]["results"]:
                empty.append(kind)
    request = urllib.request.Request(f"{url}{GV}/activities?limit=10", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as resp:
        if not orjson.loads(resp.read())["items"]:
            empty.append("activities list")
    return empty


def percentiles(stats_csv: Path) -> list[dict[str, str]]:
    """Locust's stats rows (without ``Aggregated``), by name."""
    rows = list(csv.DictReader(stats_csv.read_text().splitlines()))
    return sorted((r for r in rows if r["Name"] != "Aggregated"), key=lambda r: r["Name"])


def report(rows: list[dict[str, str]]) -> str:
    """The per-query-type table (ms)."""
    lines = [f"{'query type':<24} {'requests':>8} {'failures':>8} {'req/s':>7} "
             f"{'p50':>6} {'p95':>6} {'p99':>6}"]  # fmt: skip
    for r in rows:
        lines.append(
            f"{r['Name']:<24} {r['Request Count']:>8} {r['Failure Count']:>8} "
            f"{float(r['Requests/s']):>7.1f} {r['50%']:>6} {r['95%']:>6} {r['99%']:>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("serve-load"))
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--audit-logs", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--duration", type=int, default=60, help="seconds")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    store = (args.out / "chdb").resolve()
    fill_store(store, args.activities, args.audit_logs, args.events)
    tokens = args.out / "tokens"
    tokens.write_text(secrets.token_urlsafe(24) + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(args.out / "serve.log", "wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "processor", "serve", "--clickhouse-url", f"chdb://{store}",
             "--listen-addr", f"127.0.0.1:{port}", "--token-file", str(tokens)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while http_status(f"{url}/readyz") != 200:
                if serve.poll() is not None or time.monotonic() > deadline:
                    print(f"activity serve did not start: see {args.out / 'serve.log'}")
                    return 1
                time.sleep(0.2)
            empty = preflight(url, tokens.read_text().strip())
            if empty:
                print(f"these queries found nothing in the store: {', '.join(empty)}")
                return 1
            locust = subprocess.run(
                [sys.executable, "-m", "locust", "-f", str(HERE / "queryfile.py"), "--headless",
                 "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s",
                 "--host", url, "--serve-token-file", str(tokens), "--only-summary",
                 "--csv", str(args.out / "locust"), "--html", str(args.out / "report.html"),
                 "--loglevel", "WARNING"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            (args.out / "locust.log").write_text(locust.stdout + locust.stderr)
        finally:
            stop_process(serve)
    rows = percentiles(args.out / "locust_stats.csv")
    table = report(rows)
    (args.out / "summary.txt").write_text(table + "\n")
    print(table)
    failed = sum(int(r["Failure Count"]) for r in rows)
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
