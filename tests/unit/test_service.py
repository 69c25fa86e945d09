"""The long-running service lifecycle: the heap is frozen while serving, and thawed after."""

from __future__ import annotations

import asyncio
import gc

import pytest

from processor.service import Service


class Probe(Service):
    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self.seen: list[tuple[bool, int]] = []
        self.stopped = False

    async def start(self) -> None:
        self.seen.append((self.serving, gc.get_freeze_count()))

    async def stop(self) -> None:
        self.stopped = True


def test_serve_freezes_the_heap_after_start_and_thaws_it_at_stop():
    assert gc.get_freeze_count() == 0
    probe = Probe()

    async def main() -> list[tuple[bool, int]]:
        task = asyncio.ensure_future(probe.serve())
        while not probe.serving:
            await asyncio.sleep(0.01)
        during = [(probe.serving, gc.get_freeze_count())]
        held = [[] for _ in range(1000)]  # GC-tracked, allocated after the freeze
        before = gc.get_freeze_count()
        probe.settle()  # e.g. after a policy reload: frozen again, now with the new objects
        during.append((probe.serving, gc.get_freeze_count() - before))
        del held
        probe.request_stop()
        await task
        return during

    during = asyncio.run(main())
    assert probe.seen == [(False, 0)]  # start() runs before the freeze
    assert during[0][0] and during[0][1] > 0
    assert during[1][0] and during[1][1] >= 1000
    assert probe.stopped and not probe.serving
    assert gc.get_freeze_count() == 0


def test_settle_does_nothing_outside_serve():
    probe = Probe()
    probe.settle()
    assert gc.get_freeze_count() == 0


class Stuck(Service):
    """A service whose start never finishes (NATS unreachable: its clients retry forever)."""

    def __init__(self, error: Exception | None = None) -> None:
        self._stop = asyncio.Event()
        self.error = error
        self.cancelled = self.stopped = False

    async def start(self) -> None:
        if self.error is not None:
            raise self.error
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def stop(self) -> None:
        self.stopped = True


def test_a_stop_while_starting_cancels_the_start_and_stops():
    stuck = Stuck()

    async def main() -> None:
        task = asyncio.ensure_future(stuck.serve())
        await asyncio.sleep(0.05)
        stuck.request_stop()  # what SIGTERM / SIGINT do
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert stuck.cancelled and stuck.stopped and not stuck.serving
    assert gc.get_freeze_count() == 0


def test_an_error_in_start_propagates():
    stuck = Stuck(RuntimeError("no policies"))
    with pytest.raises(RuntimeError, match="no policies"):
        asyncio.run(stuck.serve())
    assert not stuck.stopped
