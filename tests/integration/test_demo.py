"""``activity demo`` as a newcomer runs it: a fresh process, nothing set up."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from processor.demo.scenario import scenario

pytestmark = pytest.mark.integration


def test_demo_prints_the_timeline_and_exits_zero(tmp_path, require_nats):
    env = dict(os.environ, HOME=str(tmp_path), COLUMNS="200")
    env.pop("ACTIVITY_CLICKHOUSE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "processor", "demo"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["TIME", "ORIGIN", "ACTOR", "KIND", "SUMMARY"]
    summary = lines[-1]
    records = len(scenario())
    match = re.fullmatch(
        rf"{records} records in \d+ messages -> (\d+) activities, 0 dead letters, "
        r"[\d.]+s \([\d,]+ records/s\)",
        summary,
    )
    assert match, summary
    assert int(match.group(1)) == len(lines) - 2  # one table row per stored activity
    text = "\n".join(lines)
    order = [
        "carol created Circuit ams-fra-1",
        'Circuit ams-fra-1 is not ready: Provider "zayo" not found',
        "carol registered Provider Zayo",
        "Circuit ams-fra-1 is ready",
    ]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
