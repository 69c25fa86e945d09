"""Windowed JetStream publishing: many publishes in flight, every PubAck checked.

Awaiting each PubAck (nats-py ``js.publish``) caps publishing at a few thousand messages a
second; here a batch is published with up to ``window`` PubAcks outstanding, all answered into one
wildcard inbox subscription (reply ``<inbox>.<n>``), and :meth:`JsPublisher.publish_all` returns
once every PubAck of its batch arrived. The window is shared by concurrent calls.

PubAcks take the frame splitter's short path (:mod:`processor.stream.frames`) when the client
allows it, as the pull consumers' messages do; otherwise nats-py's subscription callback.

A PubAck with ``"error"``, a ``503`` (no stream listens on the subject) or no PubAck within
``timeout`` of the last progress fails the message; the call then raises a retriable
:class:`PublishError` naming how many failed. With message ids (``Nats-Msg-Id``) a retry is
safe: a duplicate (``"duplicate": true``) counts as success.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from processor.errors import ProcessorError
from processor.stream import frames

log = logging.getLogger(__name__)

__all__ = ["JsPublisher", "PublishError", "PublisherStats"]

Item = tuple[str, bytes, str | None]
_MAX_REASONS = 5


class PublishError(ProcessorError):
    """Some publishes of a batch were not acknowledged by JetStream.

    Attributes:
        failed: how many messages failed.
        total: how many the batch had.
        reasons: up to five distinct reasons (PubAck errors, ``timeout``...).
    """

    def __init__(
        self, failed: int, total: int, reasons: Sequence[str], *, retriable: bool = True
    ) -> None:
        detail = "; ".join(reasons) or "unknown"
        super().__init__(f"{failed} of {total} JetStream publishes failed: {detail}")
        self.failed = failed
        self.total = total
        self.reasons = list(reasons)
        self.retriable = retriable
        #: positions stored before the failure (see :meth:`JsPublisher.publish_all`)
        self.fresh: list[int] = []


@dataclass(slots=True)
class PublisherStats:
    """Counters of one :class:`JsPublisher` (never reset)."""

    published: int = 0
    acked: int = 0
    duplicates: int = 0
    failed: int = 0
    max_outstanding: int = 0


@dataclass(slots=True, eq=False)
class _Call:
    """The PubAcks one ``publish_all`` call waits for."""

    seqs: list[int] = field(default_factory=list)
    #: positions (in the call's items) of the messages the stream stored now, not as duplicates
    fresh: list[int] = field(default_factory=list)
    left: int = 0
    failed: int = 0
    reasons: list[str] = field(default_factory=list)
    sent: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, reason: str) -> None:
        self.failed += 1
        if len(self.reasons) < _MAX_REASONS and reason not in self.reasons:
            self.reasons.append(reason)


class JsPublisher:
    """Publish batches to JetStream with a window of outstanding PubAcks.

    Args:
        js_or_nc: a nats-py ``JetStreamContext`` or ``Client``.
        window: most PubAcks outstanding at once (across concurrent calls).
        timeout: seconds without any PubAck of a call before its missing ones count as failed.
    """

    def __init__(self, js_or_nc: Any, *, window: int = 1000, timeout: float = 5.0) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.nc = getattr(js_or_nc, "_nc", js_or_nc)
        self.window = window
        self.timeout = timeout
        self.stats = PublisherStats()
        self._prefix = ""
        self._sub: Any = None
        self._lock = asyncio.Lock()
        self._pending: dict[int, _Call] = {}
        self._seq = 0
        self._room = asyncio.Event()
        self._splitter: frames.FrameSplitter | None = None

    @property
    def outstanding(self) -> int:
        """PubAcks currently awaited."""
        return len(self._pending)

    async def publish_all(self, items: Sequence[Item]) -> list[int]:
        """Publish ``(subject, payload, msg_id or None)`` items and wait for every PubAck.

        Returns:
            The positions in ``items`` of the messages the stream stored (a PubAck that is not
            a ``duplicate``), in PubAck order.

        Raises:
            PublishError: (retriable) some PubAck was an error, or missing after ``timeout``;
                its ``fresh`` lists the positions stored meanwhile.
        """
        if not items:
            return []
        await self._subscribe()
        call = _Call()
        publish = self.nc.publish
        for subject, payload, msg_id in items:
            if len(self._pending) >= self.window and not await self._wait_room(call):
                call.fail(f"no PubAck for {self.timeout}s with the window full")
                call.failed += len(items) - len(call.seqs) - 1  # the rest was never sent
                break
            self._seq += 1
            seq = self._seq
            self._pending[seq] = call
            call.seqs.append(seq)
            call.left += 1
            self.stats.max_outstanding = max(self.stats.max_outstanding, len(self._pending))
            headers = {"Nats-Msg-Id": msg_id} if msg_id else None
            try:
                await publish(subject, payload, reply=f"{self._prefix}{seq}", headers=headers)
            except Exception as exc:  # connection closed, buffer full while reconnecting...
                if self._pending.pop(seq, None) is call:
                    call.left -= 1
                    call.fail(f"publish to {subject}: {exc!r}")
        self.stats.published += len(call.seqs)
        call.sent = True
        await self._wait_done(call)
        if call.failed:
            self.stats.failed += call.failed
            error = PublishError(call.failed, len(items), call.reasons)
            error.fresh = call.fresh
            raise error
        return call.fresh

    async def close(self) -> None:
        """Unsubscribe the PubAck inbox (pending calls then time out)."""
        sub, self._sub = self._sub, None
        if sub is not None:
            if self._splitter is not None:
                self._splitter.unregister(sub._id)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- internals ------------------------------------------------------------------------------
    async def _subscribe(self) -> None:
        if self._sub is not None:
            return
        async with self._lock:
            if self._sub is None:
                prefix = self.nc.new_inbox() + "."
                self._prefix = prefix
                self._sub = await self.nc.subscribe(
                    prefix + "*", cb=self._on_ack, pending_msgs_limit=-1, pending_bytes_limit=-1
                )
                self._splitter = frames.install(self.nc)
                if self._splitter is not None:
                    self._splitter.register(self._sub._id, self._on_frame)

    async def _on_ack(self, msg: Any) -> None:
        """A PubAck on nats-py's message path (:func:`frames.install` declined the client)."""
        status = "" if msg.data else (msg.headers or {}).get("Status", "")
        self._settle(msg.subject[len(self._prefix) :], msg.data, status)

    async def _on_frame(self, subject: bytes, reply: bytes, hdr: bytes | None, data: bytes) -> None:
        """A PubAck from the frame splitter: no ``Msg``, no queue, no task hop per PubAck."""
        status = ""
        if hdr and not data:
            status = ((await self.nc._process_headers(hdr)) or {}).get("Status", "")
        self._settle(subject[len(self._prefix) :], data, status)

    def _settle(self, seq_text: str | bytes, data: bytes, status: str) -> None:
        """Count the PubAck of the message ``seq_text`` (the reply subject's last token)."""
        try:
            seq = int(seq_text)
        except ValueError:
            return
        call = self._pending.pop(seq, None)
        if call is None:  # timed out already
            return
        if not data:
            if status == "503":
                call.fail("no stream listens on the subject (503 no responders)")
            else:
                call.fail(f"empty PubAck (status {status or 'none'})")
        elif b'"error"' in data:
            call.fail(_error_text(data))
        else:
            self.stats.acked += 1
            if b'"duplicate"' in data and orjson.loads(data).get("duplicate"):
                self.stats.duplicates += 1
            else:
                call.fresh.append(bisect.bisect_left(call.seqs, seq))  # seqs ascend
        call.left -= 1
        if call.left == 0 and call.sent:
            call.done.set()
        if len(self._pending) < self.window:
            self._room.set()

    async def _wait_room(self, call: _Call) -> bool:
        """Wait until the window has room; False after ``timeout`` without any PubAck."""
        while len(self._pending) >= self.window:
            self._room.clear()
            try:
                async with asyncio.timeout(self.timeout):
                    await self._room.wait()
            except TimeoutError:
                self._expire(call)
                return False
        return True

    async def _wait_done(self, call: _Call) -> None:
        while call.left > 0:
            before = call.left
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await call.done.wait()
            if call.left > 0 and call.left == before:  # no progress within timeout
                self._expire(call)

    def _expire(self, call: _Call) -> None:
        """Count the call's missing PubAcks as failed and free their window slots."""
        for seq in call.seqs:
            if self._pending.get(seq) is call:
                del self._pending[seq]
                call.left -= 1
                call.fail(f"no PubAck within {self.timeout}s")
        self._room.set()


def _error_text(data: bytes) -> str:
    try:
        error = orjson.loads(data).get("error") or {}
        return f"{error.get('description', 'error')} (err_code {error.get('err_code', '?')})"
    except (orjson.JSONDecodeError, AttributeError):
        return data[:200].decode("utf-8", "replace")
