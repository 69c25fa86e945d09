"""Where the machine's CPU went during a timed window: named processes and the whole system.

``activity bench --e2e`` runs the worker, nats-server and its own producer on one machine; a
latency figure means little without knowing how busy the cores were meanwhile (and how much the
hypervisor took: ``steal``). Linux only (``/proc``); elsewhere :meth:`CpuWindow.stop` returns
``{}`` and the bench prints no CPU line.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: The fields of ``/proc/stat``'s ``cpu`` line, in order.
_SYSTEM_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads), or None if unreadable."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / _TICK


def system_ticks() -> dict[str, int] | None:
    """The machine's cumulative CPU ticks by kind (``/proc/stat``), or None if unreadable."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    return {name: int(value) for name, value in zip(_SYSTEM_FIELDS, first[1:], strict=False)}


class CpuWindow:
    """CPU use of named processes and of the system between :meth:`start` and :meth:`stop`.

    Args:
        pids: name -> process id (e.g. ``{"worker": ..., "nats-server": ...}``).
    """

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float | None] = {}
        self._system: dict[str, int] | None = None
        self._wall = 0.0

    def start(self) -> None:
        """Take the first reading."""
        self._start = {name: process_cpu(pid) for name, pid in self.pids.items()}
        self._system = system_ticks()
        self._wall = time.monotonic()

    def stop(self) -> dict[str, float]:
        """Percent figures since :meth:`start`: ``<name>_cpu_pct`` of one core per process;
        ``system_busy_pct`` and ``system_steal_pct`` of all cores together (the rest was idle;
        steal is time the hypervisor gave to other guests) and ``cores``."""
        wall = time.monotonic() - self._wall
        out: dict[str, float] = {}
        if wall <= 0:
            return out
        for name, pid in self.pids.items():
            before, after = self._start.get(name), process_cpu(pid)
            if before is not None and after is not None:
                out[f"{name}_cpu_pct"] = 100 * (after - before) / wall
        end = system_ticks()
        if self._system is not None and end is not None:
            delta = {k: end[k] - self._system.get(k, 0) for k in end}
            total = sum(delta.values())
            if total > 0:
                idle = delta.get("idle", 0) + delta.get("iowait", 0)
                steal = delta.get("steal", 0)
                out["system_busy_pct"] = 100 * (total - idle - steal) / total
                out["system_steal_pct"] = 100 * steal / total
                out["cores"] = float(os.cpu_count() or 1)
        return out
