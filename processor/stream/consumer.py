"""A fast JetStream pull consumer: raw pull requests answered into one callback subscription.

nats-py's ``fetch()`` pays per-message asyncio overhead (futures, ``next_msg``). Here one inbox
subscription with a callback receives the answers to raw pull requests
(``$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`` with ``batch``, ``expires`` and
``idle_heartbeat``); the callback only appends a :class:`Delivery` to a buffer, and a dispatcher
task hands everything that arrived in one read of the socket to ``on_batch`` as one list, in
arrival order (one subscription is one ordered queue: several inboxes would interleave).

Flow (as nats.go's ``Consume``): ``pending`` counts the messages asked for and not yet received
or expired. A new request for ``batch`` messages is sent whenever ``pending`` leaves room for a
whole batch below ``batch * requests``, so about ``requests`` requests stay outstanding and the
pipe never drains. A status message ends one request: ``408`` (expired) and ``409`` carry
``Nats-Pending-Messages`` (what that request still had due), other statuses count a whole batch;
``409`` max waiting / consumer deleted / leadership change, ``400`` and ``503`` also back off
before the next request. ``100`` is an idle heartbeat (or a flow-control request, answered).
Nothing is requested while paused, while the buffer holds more than two batches per request
(local back-pressure), or while the connection is down.

Watchdog (every ``heartbeat`` seconds): after a reconnect (nats-py re-subscribes, but pull
requests do not survive a server restart) the requests are re-issued; with requests outstanding,
two missed heartbeats mean they are gone: they are re-issued; silence for ``stall_timeout``
despite that also re-subscribes the inbox (the known failure of pull consumers that go silently
stale after a reconnect). :meth:`PullConsumer.stop` drains the subscription, so nothing that was
delivered is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from processor.stream import frames
from processor.stream.frames import FrameSplitter

log = logging.getLogger(__name__)

__all__ = [
    "ConsumerStats",
    "Delivery",
    "PullConsumer",
    "ack_many",
    "in_progress_many",
    "nak_many",
]

OnBatch = Callable[[list["Delivery"]], Awaitable[None] | None]

_ERROR_BACKOFF = (0.25, 5.0)  # first and maximum back-off after an error status, seconds
_ENDED = ("404", "408")
#: Pull requests each consumer keeps outstanding, unless told otherwise.
PULL_REQUESTS = 2
_TOO_BIG = "Message Size Exceeds MaxBytes"
_COMPLETED_409 = (_TOO_BIG, "Batch Completed")


@dataclass(slots=True)
class Delivery:
    """One delivered JetStream message.

    Attributes:
        subject: the subject it was published on.
        data: the payload.
        reply: the ack subject (``$JS.ACK...``).
        headers: its headers (``Nats-Msg-Id``...), or None.
        num_delivered: 1 on first delivery, more on redeliveries.
        stream_seq: its stream sequence.
    """

    subject: str
    data: bytes
    reply: str
    headers: dict[str, str] | None
    num_delivered: int
    stream_seq: int


@dataclass(slots=True)
class ConsumerStats:
    """Counters of one :class:`PullConsumer` (read them for metrics; never reset)."""

    received: int = 0
    bytes: int = 0
    batches: int = 0
    pulls: int = 0
    heartbeats: int = 0
    missed_heartbeats: int = 0
    stalls: int = 0
    reconnects: int = 0
    handler_errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


class PullConsumer:
    """Consume a durable pull consumer with pull requests kept outstanding.

    Args:
        nc: a connected ``nats.aio.client.Client``.
        stream: the stream name.
        durable: the durable consumer name (it must exist; see ``topology.ensure_consumer``).
        on_batch: called with each group of deliveries, in arrival order; may be a coroutine
            function (groups are then handed one at a time, each awaited). It must ack or nak.
        batch: messages per pull request.
        max_bytes: byte limit per pull request (0: none); a message bigger than that is
            fetched alone, by one request without the limit.
        expires: lifetime of a pull request, seconds.
        heartbeat: idle heartbeat asked of the server, seconds (at most ``expires / 2``).
        stall_timeout: silence (no message, no heartbeat) with requests outstanding after
            which the inbox is re-subscribed and the requests re-issued.
        requests: about how many pull requests are kept outstanding.
    """

    def __init__(
        self,
        nc: Any,
        stream: str,
        durable: str,
        on_batch: OnBatch,
        *,
        batch: int = 256,
        max_bytes: int = 0,
        expires: float = 5.0,
        heartbeat: float = 1.0,
        stall_timeout: float = 15.0,
        requests: int = PULL_REQUESTS,
    ) -> None:
        if batch < 1 or requests < 1:
            raise ValueError("batch and requests must be >= 1")
        if heartbeat <= 0 or heartbeat * 2 > expires:
            raise ValueError(f"heartbeat ({heartbeat}s) must be > 0 and <= expires/2 ({expires}s)")
        self.nc = nc
        self.stream = stream
        self.durable = durable
        self.on_batch = on_batch
        self.batch = batch
        self.expires = expires
        self.heartbeat = heartbeat
        self.stall_timeout = stall_timeout
        self.stats = ConsumerStats()
        self._subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        req: dict[str, int] = {
            "batch": batch,
            "expires": int(expires * 1e9),
            "idle_heartbeat": int(heartbeat * 1e9),
        }
        # After "Message Size Exceeds MaxBytes" (the next message is bigger than a request may
        # carry), one request for a single message of any size, or that message would block the
        # consumer forever.
        self._request_one = orjson.dumps({**req, "batch": 1}) if max_bytes else b""
        if max_bytes:
            req["max_bytes"] = max_bytes
        self._request = orjson.dumps(req)
        self._target = batch * requests
        self._max_buffer = 2 * batch * requests
        self._pending = 0  # messages asked for, not yet received or expired
        self._inbox = ""
        self._sub: Any = None
        self._splitter: FrameSplitter | None = None
        self._buffer: list[Delivery] = []
        self._handing = 0
        self._wake = asyncio.Event()
        self._kick = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._controller: asyncio.Task[None] | None = None
        self._paused = False
        self._stopping = False
        self._closing = False
        self._reconnects = 0
        self._last_heard = 0.0  # loop time of the last message or heartbeat
        self._wanting_since = 0.0  # when requests went out after none were outstanding
        self._last_retry = 0.0  # when requests were last re-issued for missed heartbeats
        self._not_before = 0.0  # back-off after an error status
        self._backoff = 0.0

    # -- public ---------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """Whether new pull requests are held back."""
        return self._paused

    @property
    def buffered(self) -> int:
        """Deliveries received and not yet returned from ``on_batch``."""
        return len(self._buffer) + self._handing

    @property
    def pending(self) -> int:
        """Messages requested and not yet received (as far as the consumer knows)."""
        return self._pending

    async def start(self) -> None:
        """Subscribe the inbox, issue the first pull requests, start the tasks."""
        if self._dispatcher is not None:
            raise RuntimeError("PullConsumer already started")
        self._reconnects = self.nc.stats.get("reconnects", 0)
        self._splitter = frames.install(self.nc)
        await self._subscribe()
        self._dispatcher = asyncio.ensure_future(self._dispatch())
        self._controller = asyncio.ensure_future(self._control())
        await self._pull()
        log.debug("pull consumer %s/%s started", self.stream, self.durable)

    def pause(self) -> None:
        """Issue no new pull requests (those outstanding still deliver, up to a batch each)."""
        self._paused = True

    def resume(self) -> None:
        """Issue pull requests again."""
        if self._paused:
            self._paused = False
            self._kick.set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop pulling; deliveries already received are still handed to ``on_batch``.

        The inbox is drained (unsubscribe, round trip, process what is queued), so messages the
        server sent before it saw the unsubscribe are handed over too. Returns once the last
        group was handed over (and awaited).
        """
        if self._stopping:
            return
        self._stopping = True
        if self._controller is not None:
            # no cancel(): Python 3.11's wait_for can swallow one; the loop sees _stopping
            self._kick.set()
            await self._controller
        if self._sub is not None:
            await self._close_sub(self._sub, timeout)
            self._forget(self._sub)
            self._sub = None
        self._closing = True
        self._wake.set()
        dispatcher = self._dispatcher
        if dispatcher is not None and dispatcher is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher  # hands over the rest (not awaited when on_batch stops us)
        log.debug("pull consumer %s/%s stopped: %s", self.stream, self.durable, self.stats)

    # -- subscription ---------------------------------------------------------------------------
    async def _subscribe(self) -> None:
        loop = asyncio.get_running_loop()
        nc = self.nc
        wake = self._wake.set
        stats = self.stats

        async def deliver(subject: str, reply: str, headers: Any, data: bytes) -> None:
            """The hot path: one call per message."""
            self._last_heard = loop.time()
            if not reply.startswith("$JS.ACK."):
                await self._on_status(headers or {}, reply)
                return
            tokens = reply.split(".")
            i = 6 if len(tokens) >= 11 else 4  # v2 reply subjects carry domain and account hash
            self._buffer.append(
                Delivery(subject, data, reply, headers, int(tokens[i]), int(tokens[i + 1]))
            )
            wake()
            stats.received += 1
            stats.bytes += len(data)
            self._pending -= 1
            if self._pending + self.batch <= self._target:
                await self._pull()

        async def on_frame(subject: bytes, reply: bytes, hdr: bytes | None, data: bytes) -> None:
            headers = await nc._process_headers(hdr) if hdr else None  # as nats-py's
            await deliver(subject.decode(), reply.decode(), headers, data)

        async def cb(msg: Any) -> None:  # nats-py's path (frames.install declined)
            await deliver(msg.subject, msg.reply, msg.headers, msg.data)

        self._inbox = nc.new_inbox()
        self._sub = await nc.subscribe(
            self._inbox, cb=cb, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        if self._splitter is not None:
            self._splitter.register(self._sub._id, on_frame)

    def _forget(self, sub: Any) -> None:
        if self._splitter is not None:
            self._splitter.unregister(sub._id)

    async def _close_sub(self, sub: Any, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await sub.drain()
        except Exception as exc:  # closed/draining connection, timeout: drop what is left
            log.debug("draining %s failed (%r); unsubscribing", sub.subject, exc)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- message path ---------------------------------------------------------------------------
    async def _on_status(self, headers: dict[str, str], reply: str) -> None:
        status = headers.get("Status", "")
        if status == "100":
            self.stats.heartbeats += 1
            if reply:  # flow control request
                await self.nc.publish(reply, b"")
            return
        statuses = self.stats.statuses
        statuses[status] = statuses.get(status, 0) + 1
        description = headers.get("Description", "").strip()
        left = headers.get("Nats-Pending-Messages")
        self._pending = max(0, self._pending - (int(left) if left else self.batch))
        if status in _ENDED or (status == "409" and description in _COMPLETED_409):
            self._backoff = 0.0
            if description == _TOO_BIG:
                await self._pull_one()
            await self._pull()
            return
        # 409 max waiting / consumer deleted / leadership change / server shutdown, 400, 503
        self._backoff = min(max(self._backoff * 2, _ERROR_BACKOFF[0]), _ERROR_BACKOFF[1])
        self._not_before = asyncio.get_running_loop().time() + self._backoff
        log.warning(
            "pull request on %s/%s answered %s %s: next request in %.2fs",
            self.stream,
            self.durable,
            status,
            description or "(no description)",
            self._backoff,
        )
        self._kick.set()

    async def _pull(self, *, keep_clock: bool = False) -> None:
        """Send pull requests while there is room for a whole batch and nothing holds back."""
        if self._paused or self._stopping or self._sub is None:
            return
        nc = self.nc
        if not nc.is_connected or self.buffered >= self._max_buffer:
            return  # the watchdog's tick (reconnect) or the dispatcher (hand-off) comes back
        now = asyncio.get_running_loop().time()
        if now < self._not_before:
            return
        while self._pending + self.batch <= self._target:
            if self._pending == 0 and not keep_clock:
                self._wanting_since = now  # silence counts from here, or the last message
            self._pending += self.batch
            self.stats.pulls += 1
            try:
                await nc.publish(self._subject, self._request, reply=self._inbox)
            except Exception as exc:
                self._pending -= self.batch
                log.warning("pull request on %s/%s failed: %r", self.stream, self.durable, exc)
                return

    async def _pull_one(self) -> None:
        """Request one message without a byte limit (it did not fit in a bounded request)."""
        if self._paused or self._stopping or self._sub is None or not self._request_one:
            return
        self._pending += 1
        self.stats.pulls += 1
        try:
            await self.nc.publish(self._subject, self._request_one, reply=self._inbox)
        except Exception as exc:
            self._pending -= 1
            log.warning("pull request on %s/%s failed: %r", self.stream, self.durable, exc)

    # -- dispatcher -----------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._buffer:
                if self._closing:
                    return
                continue
            group, self._buffer = self._buffer, []
            self._handing = len(group)
            self.stats.batches += 1
            try:
                result = self.on_batch(group)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.stats.handler_errors += 1
                log.exception("on_batch failed for %d deliveries from %s", len(group), self.durable)
            self._handing = 0
            if self._buffer or self._closing:
                self._wake.set()
            if self._pending + self.batch <= self._target:
                self._kick.set()

    # -- watchdog -------------------------------------------------------------------------------
    async def _control(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            timeout = self.heartbeat
            if self._not_before > loop.time():
                timeout = min(timeout, self._not_before - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(timeout, 0.001)):
                    await self._kick.wait()
            self._kick.clear()
            if not self._stopping:
                await self._check(loop.time())

    async def _check(self, now: float) -> None:
        nc = self.nc
        reconnects = nc.stats.get("reconnects", 0)
        if reconnects != self._reconnects and nc.is_connected:
            self._reconnects = reconnects
            self.stats.reconnects += 1
            log.info("%s/%s: reconnected, re-issuing pull requests", self.stream, self.durable)
            self._pending = 0
        elif self._pending > 0 and nc.is_connected:
            silent = now - max(self._last_heard, self._wanting_since)
            if silent > self.stall_timeout:
                await self._recover(silent)
            elif now - max(self._last_heard, self._wanting_since, self._last_retry) > (
                2 * self.heartbeat + 0.5
            ):
                self.stats.missed_heartbeats += 1
                log.info("%s/%s: heartbeats missed, re-issuing requests", self.stream, self.durable)
                self._last_retry = now
                self._pending = 0
                await self._pull(keep_clock=True)
                return
        await self._pull()

    async def _recover(self, silent: float) -> None:
        self.stats.stalls += 1
        log.warning(
            "%s/%s: no message and no heartbeat for %.1fs: re-subscribing and re-issuing",
            self.stream,
            self.durable,
            silent,
        )
        old, self._sub = self._sub, None
        self._forget(old)
        with contextlib.suppress(Exception):
            await old.unsubscribe()
        await self._subscribe()
        self._pending = 0


def request_bytes(max_bytes: int, budget: int, consumers: int) -> int:
    """The byte limit of each pull request of ``consumers`` consumers on one connection.

    ``max_bytes``, lowered so that all their outstanding requests (:data:`PULL_REQUESTS` each)
    together stay within ``budget``: nats-server closes a connection whose unread data passes its
    ``max_pending`` (64 MB by default) as a slow consumer, and a backlog of large messages (a
    catch-up of EventLists) fills every request at once. A message bigger than the limit is still
    delivered, alone (:class:`PullConsumer`).
    """
    return max(1, min(max_bytes, budget // max(1, consumers * PULL_REQUESTS)))


# -- acknowledgements ------------------------------------------------------------------------------
async def _reply_all(nc: Any, deliveries: Iterable[Delivery], payload: bytes) -> None:
    """Publish ``payload`` to every delivery's reply subject, as one write.

    The PUB commands are built in one buffer and queued on the connection at once (nats-py's
    ``publish`` costs several microseconds per call, a third of the consume path); ack subjects
    come from the server, so they need no validation. Falls back to ``nc.publish`` on a client
    without the internal queue.
    """
    send = getattr(nc, "_send_command", None)
    flush = getattr(nc, "_flush_pending", None)
    if send is None or flush is None:
        for d in deliveries:
            await nc.publish(d.reply, payload)
        return
    if nc.is_closed:
        from nats.errors import ConnectionClosedError

        raise ConnectionClosedError
    tail = f" {len(payload)}\r\n".encode() + payload + b"\r\n"
    commands = [b"PUB " + d.reply.encode() + tail for d in deliveries]
    if not commands:
        return
    await send(b"".join(commands))
    nc.stats["out_msgs"] += len(commands)
    nc.stats["out_bytes"] += len(payload) * len(commands)
    await flush()


async def ack_many(nc: Any, deliveries: Iterable[Delivery], *, confirm: bool = False) -> None:
    """Acknowledge deliveries (fire-and-forget ``+ACK``, like upstream's ``msg.Ack()``).

    The acks are queued on the connection and written in one flush of its buffer.

    Args:
        nc: the connection the deliveries came from.
        deliveries: what to acknowledge.
        confirm: also wait for a PING/PONG round trip, so the server has read them (it applies
            them to the consumer asynchronously, moments later).
    """
    await _reply_all(nc, deliveries, b"+ACK")
    if confirm:
        await nc.flush()


async def nak_many(nc: Any, deliveries: Iterable[Delivery], delay: float | None = None) -> None:
    """Negatively acknowledge deliveries: redeliver now, or after ``delay`` seconds."""
    payload = b"-NAK" if not delay else b'-NAK {"delay":%d}' % int(delay * 1e9)
    await _reply_all(nc, deliveries, payload)


async def in_progress_many(nc: Any, deliveries: Iterable[Delivery]) -> None:
    """Reset the ack timer of deliveries still being worked on (``+WPI``)."""
    await _reply_all(nc, deliveries, b"+WPI")
