"""The lifecycle shared by the long-running commands (``activity run``, ``activity reconcile``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Iterable, Iterator


class Service:
    """Something that starts, runs until SIGTERM/SIGINT or :meth:`request_stop`, then stops.

    Subclasses implement :meth:`start` and :meth:`stop` and create ``self._stop`` (an
    :class:`asyncio.Event`) in their constructor.
    """

    _stop: asyncio.Event
    #: True while :meth:`serve` runs: the heap is frozen (see :func:`settle_heap`).
    serving: bool = False

    async def start(self) -> None:
        """Connect and begin work."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Finish what was handed over and close everything."""
        raise NotImplementedError

    def request_stop(self) -> None:
        """Ask :meth:`serve` to shut down (signal handlers call this)."""
        self._stop.set()

    async def serve(self) -> None:
        """Start, run until SIGTERM/SIGINT or :meth:`request_stop`, then stop cleanly.

        A stop asked for while starting (NATS not reachable yet: the clients retry forever)
        cancels the start and stops what it began, instead of being ignored.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        if not await self._started():
            await self.stop()
            return
        self.serving = True
        try:
            with frozen_heap():
                await self._stop.wait()
        finally:
            self.serving = False
        await self.stop()

    async def _started(self) -> bool:
        """Run :meth:`start`; False when a stop was requested before it finished."""
        starting = asyncio.ensure_future(self.start())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return False
        starting.result()  # start's own error, if any
        return True

    def settle(self) -> None:
        """Settle the heap again after a large long-lived change (a policy reload), if serving."""
        if self.serving:
            settle_heap()


def settle_heap() -> None:
    """Collect once, then move every object alive now out of the cyclic GC's way.

    A long-running worker holds a large, stable heap (compiled policies, CEL environments,
    clients); a full (generation 2) collection walks all of it. Measured in a worker with the
    bundled policies: 47-69 ms per full collection, several times a minute under load, each one a
    stall of the event loop and the dominant term of the publish -> activity p99 (docs/runtime.md).
    ``gc.freeze()`` moves the objects to the permanent generation, which collections skip, so
    full collections only walk what was allocated since (measured: about 5 ms). Frozen objects
    are still freed by reference counting; a cycle among them would only be collected after
    :func:`gc.unfreeze`, which is why this runs after startup and after each policy reload (the
    old set's cycles are collected first), not per message.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """:func:`settle_heap` for the ``with`` block (serving, or a benchmark's timed part)."""
    settle_heap()
    try:
        yield
    finally:
        gc.unfreeze()


async def cancel_tasks(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel every task of ``tasks``, then wait for each to end (its cancellation absorbed)."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
