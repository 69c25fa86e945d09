"""``activity bench --ingest`` at a tiny size: both phases run and every record is acknowledged.

It measures nothing (the figures of a run this small mean nothing); it proves the pieces fit: the
bundled nats-server, the ingest child process, the HTTP senders, the baseline, the JSON output.
"""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

pytestmark = pytest.mark.integration


def test_tiny_ingest_bench_reports_both_paths_per_list_size(tmp_path, require_nats):
    cmd = [
        sys.executable, "-m", "processor", "bench", "--ingest",
        "--count", "300", "--list-sizes", "20,50", "--concurrency", "2", "--json",
    ]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the nats-server stores
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = orjson.loads(done.stdout)
    assert figures["records"] == 300 and figures["partitions"] == 8
    assert sorted(figures["lists"]) == ["20", "50"]
    for phases in figures["lists"].values():
        for path in ("baseline", "ingest"):
            f = phases[path]
            assert f["records_per_s"] > 0 and 0 < f["p50_ms"] <= f["p99_ms"], (path, f)
        assert "ingest_cpu_pct" in phases["ingest"]
