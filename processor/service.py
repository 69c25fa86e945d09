"""The lifecycle shared by the long-running commands (``activity run``, ``activity reconcile``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal


class Service:
    """Something that starts, runs until SIGTERM/SIGINT or :meth:`request_stop`, then stops.

    Subclasses implement :meth:`start` and :meth:`stop` and create ``self._stop`` (an
    :class:`asyncio.Event`) in their constructor.
    """

    _stop: asyncio.Event

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
        """Start, run until SIGTERM/SIGINT or :meth:`request_stop`, then stop cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        await self._stop.wait()
        await self.stop()
