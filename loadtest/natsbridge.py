"""nats-py for Locust: one asyncio loop on a native thread per Locust process.

Locust runs its users on gevent and monkey-patches ``socket``, ``select`` and ``threading``;
nats-py is asyncio. :class:`Bridge` therefore runs a uvloop event loop (libuv does its own I/O,
untouched by the patching) on a thread started with the *original* ``_thread.start_new_thread``.
Users hand messages over with :meth:`Bridge.publish` (``call_soon_threadsafe``, never blocking);
the loop publishes them to JetStream and subscribes to ``activities.>``.

Results travel back as plain tuples in a ``collections.deque`` (``append``/``popleft`` are atomic),
which a greenlet of the locustfile drains and turns into ``events.request.fire(...)`` calls, so
Locust's stats are only ever touched from gevent:

* ``("nats", "<kind> p<N>", start, ms, records, error)`` per publish, ``ms`` until the PubAck;
* ``("e2e", "activity p<N>", start, ms, 1, None)`` per activity of a record this process
  published, ``ms`` from the publish to the activity's arrival on ``ACTIVITIES`` (matched by
  ``spec.origin.id``). Activities of other processes' records are ignored.

Records posted to ``activity ingest`` over HTTP are registered with :meth:`Bridge.expect`, so
their activities are timed the same way, from the start of the POST.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger(__name__)

Result = tuple[str, str, float, float, int, Exception | None]

#: Seconds a published record waits for its activity before it is forgotten.
SENT_TTL = 120.0


def _start_native_thread(target: Callable[[], None]) -> None:
    try:
        from gevent import monkey

        start = monkey.get_original("_thread", "start_new_thread")
    except ImportError:  # not under Locust
        import _thread

        start = _thread.start_new_thread
    start(target, ())


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Bridge:
    """A NATS connection on its own event loop thread.

    Args:
        url: NATS server URL(s), comma separated.
        activity_subject: the subject the worker publishes activities on.
        max_in_flight: publishes awaiting their PubAck before :meth:`publish` refuses more.
    """

    def __init__(
        self, url: str, activity_subject: str = "activities.>", max_in_flight: int = 5000
    ) -> None:
        self.url = url
        self.activity_subject = activity_subject
        self.max_in_flight = max_in_flight
        self.results: collections.deque[Result] = collections.deque()
        self.submitted = 0  # written by the submitting thread only
        self.completed = 0  # written by the loop thread only
        self.activities = 0
        self.last_activity = 0.0
        self.error: BaseException | None = None
        self._sent: dict[str, tuple[int, float]] = {}
        self._loop = _new_loop()
        self._nc: Any = None
        self._js: Any = None
        self._ready = False
        self._finished = False
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    # -- lifecycle (called from the Locust side) -------------------------------------------------
    def start(self, sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0) -> None:
        """Start the loop thread and wait until NATS is connected.

        Args:
            sleep: a sleep that yields (``gevent.sleep`` under Locust).
            timeout: seconds to wait for the connection.

        Raises:
            RuntimeError: the connection failed or took too long.
        """
        _start_native_thread(self._run)
        deadline = time.monotonic() + timeout
        while not self._ready:
            if self.error is not None or self._finished:
                raise RuntimeError(f"cannot connect to NATS at {self.url}: {self.error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no NATS connection to {self.url} after {timeout:.0f}s")
            sleep(0.01)

    def stop(self, sleep: Callable[[float], None] = time.sleep, timeout: float = 30.0) -> None:
        """Wait for the outstanding PubAcks, drain the connection, end the thread."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            sleep(0.01)
        stop = self._stop
        if stop is not None and not self._finished:
            self._loop.call_soon_threadsafe(stop.set)
        while not self._finished and time.monotonic() < deadline:
            sleep(0.01)

    @property
    def in_flight(self) -> int:
        """Publishes handed over and not yet acknowledged (or failed)."""
        return self.submitted - self.completed

    def publish(
        self, subject: str, payload: bytes, name: str, partition: int, ids: list[str]
    ) -> bool:
        """Hand one message to the loop; False (nothing sent) while ``max_in_flight`` wait."""
        if self.in_flight >= self.max_in_flight or self._finished:
            return False
        self.submitted += 1
        self._loop.call_soon_threadsafe(
            self._spawn, subject, payload, name, partition, ids, time.time(), time.perf_counter()
        )
        return True

    def expect(self, ids: list[str], partitions: list[int], started: float) -> None:
        """Time the activities of records sent another way (HTTP to the ingest) from
        ``started`` (``time.perf_counter()``); ``partitions`` gives each record's partition."""
        self._loop.call_soon_threadsafe(self._expect, ids, partitions, started)

    # -- the loop thread --------------------------------------------------------------------------
    def _expect(self, ids: list[str], partitions: list[int], started: float) -> None:
        for origin, partition in zip(ids, partitions, strict=True):
            self._sent[origin] = (partition, started)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported through self.error
            self.error = exc
        finally:
            self._loop.close()
            self._finished = True

    async def _main(self) -> None:
        import nats

        self._stop = asyncio.Event()
        servers = [u.strip() for u in self.url.split(",") if u.strip()]
        self._nc = await nats.connect(servers=servers, name="activity-loadtest")
        self._js = self._nc.jetstream()
        await self._nc.subscribe(self.activity_subject, cb=self._on_activity)
        self._ready = True
        sweeper = asyncio.ensure_future(self._sweep())
        await self._stop.wait()
        sweeper.cancel()
        await self._nc.drain()

    def _spawn(self, *args: Any) -> None:
        task = asyncio.ensure_future(self._publish(*args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(
        self,
        subject: str,
        payload: bytes,
        name: str,
        partition: int,
        ids: list[str],
        wall: float,
        started: float,
    ) -> None:
        for origin in ids:
            self._sent[origin] = (partition, started)
        error: Exception | None = None
        try:
            await self._js.publish(subject, payload, timeout=10)
        except Exception as exc:
            error = exc
        ms = (time.perf_counter() - started) * 1000
        self.results.append(("nats", name, wall, ms, len(ids), error))
        self.completed += 1

    async def _on_activity(self, msg: Any) -> None:
        now = time.perf_counter()
        try:
            origin = orjson.loads(msg.data)["spec"]["origin"]["id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        hit = self._sent.pop(origin, None)
        if hit is None:
            return
        partition, started = hit
        self.activities += 1
        self.last_activity = time.monotonic()
        wall = time.time() - (now - started)
        ms = (now - started) * 1000
        self.results.append(("e2e", f"activity p{partition}", wall, ms, 1, None))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(10)
            old = time.perf_counter() - SENT_TTL
            for origin in [k for k, (_, t) in self._sent.items() if t < old]:
                del self._sent[origin]
