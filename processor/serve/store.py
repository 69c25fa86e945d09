"""The store behind ``activity serve``: blocking sink calls run on a small thread pool.

Query functions of :mod:`processor.query` are synchronous (the sinks are). Each pool thread opens
its own sink from the URL (a ClickHouse client is one connection and not thread-safe; chDB sinks
on one directory share the process's single session, serialised by its lock). A sink handed in
(the demo's, opened by its worker in this process) is used by one thread only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Store:
    """Runs ``fn(backend, ...)`` off the event loop with a per-thread backend.

    Args:
        url: the sink URL (``chdb://DIR``, ``clickhouse://...``); ignored when ``sink`` is given.
        sink: an open sink to use instead (one thread).
        workers: threads (and connections) for a URL.
    """

    def __init__(self, url: str = "", *, sink: Any = None, workers: int = 4) -> None:
        self.url = url
        self._given = sink
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        size = 1 if sink is not None else workers
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="activity-serve-store")

    def open(self) -> None:
        """Open one backend now, so a wrong URL or a missing store fails at start."""
        self._pool.submit(self._backend).result()

    def _backend(self) -> Any:
        if self._given is not None:
            return self._given
        backend = getattr(self._local, "backend", None)
        if backend is None:
            from processor.sink import open_sink

            options: dict[str, Any] = {"create": False} if self.url.startswith("chdb:") else {}
            backend = open_sink(self.url, **options)
            try:
                backend.open()
            except BaseException:
                backend.close()
                raise
            self._local.backend = backend
            with self._lock:
                self._opened.append(backend)
        return backend

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(backend, *args, **kwargs)`` on a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._backend(), *args, **kwargs))

    def close(self) -> None:
        """Stop the threads and close the backends this store opened (not a given one)."""
        self._pool.shutdown(wait=True)
        with self._lock:
            for backend in self._opened:
                backend.close()
            self._opened.clear()
