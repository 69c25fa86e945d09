"""The worker's storage thread runs at a lower CPU priority, and so do the threads it starts."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from processor.worker.sinkthread import sink_executor

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature"
)


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _child_nice() -> int:
    """The nice value of a thread started from the calling thread (as chDB starts its pools)."""
    seen: list[int] = []
    child = threading.Thread(target=lambda: seen.append(_own_nice()))
    child.start()
    child.join()
    return seen[0]


@linux_only
def test_sink_thread_is_lowered_and_its_threads_inherit():
    base = _own_nice()
    step = min(5, 19 - base)
    assert step > 0, "the test process already runs at the lowest priority"
    executor = sink_executor(step)
    try:
        assert executor.submit(_own_nice).result() == base + step
        assert executor.submit(_child_nice).result() == base + step
    finally:
        executor.shutdown(wait=True)
    assert _own_nice() == base  # the caller's own priority is untouched


@linux_only
def test_zero_keeps_the_callers_priority():
    executor = sink_executor(0)
    try:
        assert executor.submit(_own_nice).result() == _own_nice()
    finally:
        executor.shutdown(wait=True)
