"""The worker's storage thread, at a lower CPU priority than the stream.

Every call the worker makes into its sink (migrations, open, inserts, close) runs on one dedicated
thread. Its nice value is raised by ``sink_nice`` when it starts, and threads it creates inherit
that value (Linux keeps a nice value per thread): an embedded chDB opened from this thread runs its
query, merge and background pools at the same priority. An insert burst (once a batch, about a
second) then takes the cores only when the event loop, nats-server and the producers leave them
idle, instead of delaying every record in flight; the insert's own latency only delays the acks.
Measured in ``docs/benchmarks-history.md`` ("The storage thread's priority").
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (Linux; logged and skipped elsewhere)."""
    if nice <= 0:
        return
    if not sys.platform.startswith("linux"):  # PRIO_PROCESS with a thread id is Linux-only
        log.info("sink_nice %d ignored: per-thread priorities need Linux", nice)
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError as exc:
        log.warning("cannot lower the sink thread's priority: %s", exc)


def sink_executor(nice: int) -> concurrent.futures.ThreadPoolExecutor:
    """One thread, named ``sink``, at ``nice`` steps below the caller's priority."""
    return concurrent.futures.ThreadPoolExecutor(
        1, thread_name_prefix="sink", initializer=lower_priority, initargs=(nice,)
    )
