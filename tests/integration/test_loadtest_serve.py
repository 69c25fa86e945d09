"""The read-API load run in CI size: a small generated chDB store, ``activity serve`` on it and a
short headless Locust run of ``loadtest/queryfile.py``'s readers. Proves the pieces fit (every
query type answered, none failed, none empty in the preflight); it measures nothing.
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import missing_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUERY_TYPES = {
    "AuditLogQuery", "AuditLogQuery continue", "ActivityQuery", "EventQuery", "activities list",
    "AuditLogFacetsQuery", "ActivityFacetQuery",
}  # fmt: skip


def test_every_query_type_runs_without_failures(tmp_path: Path) -> None:
    if importlib.util.find_spec("locust") is None:
        missing_server("locust is not installed (pip install '.[test]')")
    out = tmp_path / "load"
    done = subprocess.run(
        [sys.executable, str(ROOT / "loadtest" / "serve_queries.py"), "--out", str(out),
         "--activities", "5000", "--audit-logs", "3000", "--events", "1000",
         "--users", "2", "--duration", "4"],
        capture_output=True, text=True, timeout=240, check=False, cwd=ROOT,
    )  # fmt: skip
    logs = "".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(out.glob("*.log")))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{logs}"
    rows = {
        r["Name"]: r for r in csv.DictReader((out / "locust_stats.csv").read_text().splitlines())
    }
    for name in QUERY_TYPES - {"AuditLogQuery continue"}:  # a continue needs a full first page
        assert int(rows[name]["Request Count"]) > 0, name
    assert set(rows) - {"Aggregated"} <= QUERY_TYPES
    assert all(int(r["Failure Count"]) == 0 for r in rows.values())
    summary = (out / "summary.txt").read_text()
    assert summary.startswith("query type") and "p99" in summary.splitlines()[0]
