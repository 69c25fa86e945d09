"""The CPU accounting that ``activity bench --e2e`` prints beside its latency figures."""

from __future__ import annotations

import os
import sys
import time

import pytest

from processor.bench.cpu import CpuWindow, process_cpu, system_ticks
from processor.bench.e2e import cpu_line

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


@linux
def test_process_cpu_follows_this_process_cpu_time():
    before, clock = process_cpu(os.getpid()), time.process_time()
    _burn(0.3)
    after, spent = process_cpu(os.getpid()), time.process_time() - clock
    assert before is not None and after is not None
    tick = 1 / os.sysconf("SC_CLK_TCK")
    assert abs((after - before) - spent) <= 3 * tick + 0.1 * spent


def test_unreadable_process_is_none():
    assert process_cpu(2**22 + 12345) is None  # above Linux's pid_max limit


@linux
def test_window_reports_processes_and_system_shares():
    window = CpuWindow({"me": os.getpid(), "gone": 2**22 + 12345})
    window.start()
    _burn(0.3)
    used = window.stop()
    assert used["me_cpu_pct"] > 0
    assert "gone_cpu_pct" not in used
    assert 0 <= used["system_steal_pct"] <= 100
    assert 0 < used["system_busy_pct"] <= 100
    assert used["cores"] == os.cpu_count()
    ticks = system_ticks()
    assert ticks is not None and {"user", "idle", "steal"} <= set(ticks)


def test_cpu_line_formats_present_figures_only():
    figures = {
        "worker_cpu_pct": 71.6,
        "nats_server_cpu_pct": 44.2,
        "system_busy_pct": 63.0,
        "system_steal_pct": 2.4,
        "cores": 2.0,
    }
    (line,) = cpu_line(figures)
    assert "worker 72%" in line and "nats-server 44%" in line and "bench" not in line
    assert "the 2 cores 63% busy, 2% stolen" in line
    assert cpu_line({}) == []
    (half,) = cpu_line({f"half_drained_{k}": v for k, v in figures.items()}, "half_drained_")
    assert half == line
