"""A frame splitter in front of nats-py's protocol parser, for the pull consumers' inboxes.

nats-py turns every ``MSG``/``HMSG`` frame into a ``Msg`` object, parses its headers, queues it on
the subscription's asyncio queue and wakes that subscription's task to call the callback: about
half of the worker's CPU per single-record message on the skip path. :class:`FrameSplitter`
takes nats-py's place as ``nc._ps`` (the object its read loop feeds with what the socket gave)
and splits the bytes into frames itself:

* a ``MSG``/``HMSG`` frame for a *registered* subscription id goes straight to that id's handler,
  as ``(subject, reply, raw header block or None, payload)``, in the read loop, in order;
* every other frame (``PING``, ``INFO``, ``-ERR``, messages of any other subscription...) is
  handed, whole and alone, to nats-py's own parser, which therefore always starts at a frame
  boundary and keeps its exact behaviour (pings answered, errors raised, requests resolved);
* a frame longer than what one read gave (an EventList of a few hundred KB spans several reads
  of the socket) is kept as those reads, not joined to each next one, and its header block and
  payload are copied out of them once, when the last part arrives.

The subscriptions stay nats-py's (``nc.subscribe``): SUB, UNSUB, re-subscription after a reconnect
and ``drain()`` work as before; only their messages take the short path. nats-py's ``reset()``
after a reconnect resets both parsers. :func:`install` leaves a client alone (returns None) when
its parser is not the one this was written against (nats-py's ``Parser`` with ``buf``, ``state``,
``needed`` and ``header_needed``), so a change in nats-py falls back to its normal path.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["FrameSplitter", "Handler", "install"]

#: ``handler(subject, reply, headers, payload)``: headers is the raw header block (``NATS/1.0...``)
Handler = Callable[[bytes, bytes, bytes | None, bytes], Awaitable[None]]

_CRLF = b"\r\n"
#: A message frame's control line: subject, sid, reply, header size, and where its header block
#: starts and its payload ends, counted from the start of the frame.
_Frame = tuple[bytes, int, bytes, int, int, int]
_INNER = ("buf", "state", "needed", "parse", "reset")


class FrameSplitter:
    """Splits the protocol stream into frames; see the module docstring.

    Args:
        nc: the client (for its ``stats``).
        inner: nats-py's parser, which gets every frame without a registered handler.
    """

    def __init__(self, nc: Any, inner: Any) -> None:
        self.nc = nc
        self.inner = inner
        self.handlers: dict[int, Handler] = {}
        #: the start of a frame not complete yet, as read (joined once it is complete)
        self._parts: list[bytes | memoryview] = []
        self._have = 0  # bytes in _parts
        self._need = 0  # bytes the frame in _parts takes, once its control line is known
        self._frame: _Frame | None = None  # that frame's control line, parsed

    def register(self, sid: int, handler: Handler) -> None:
        """Hand ``sid``'s messages to ``handler`` from now on."""
        self.handlers[sid] = handler

    def unregister(self, sid: int) -> None:
        """Give ``sid``'s messages back to nats-py (its subscription callback, if any)."""
        self.handlers.pop(sid, None)

    def reset(self) -> None:
        """Forget partial input (nats-py calls this on reconnect)."""
        self._parts, self._have, self._need, self._frame = [], 0, 0, None
        self.inner.reset()

    async def parse(self, data: bytes = b"") -> None:
        """Consume ``data``, the next bytes from the socket."""
        if self.inner.buf:
            data = await self._finish_inner(data)
        p = 0
        if self._parts:
            parts = self._parts
            parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return  # the payload is not all here yet: nothing is copied meanwhile
            if self._frame is None:  # a control line not complete yet (short): joined
                data = b"".join(parts)
            else:
                p = len(data) - (self._have - self._need)  # where the frame ends in data
                await self._complete(parts, self._frame)
            self._parts, self._have, self._need, self._frame = [], 0, 0, None
        await self._split(data, p)

    async def _split(self, data: bytes, p: int) -> None:
        """Hand over the frames of ``data`` from ``p``; keep the start of an incomplete one."""
        inner = self.inner
        handlers = self.handlers
        stats = self.nc.stats
        n = len(data)
        while p < n:
            eol = data.find(_CRLF, p)
            if eol < 0:
                break
            head = data[p : p + 4]
            if head == b"MSG ":
                args = data[p + 4 : eol].split()
                if len(args) == 3:
                    subject, sid, size = args
                    reply = b""
                elif len(args) == 4:
                    subject, sid, reply, size = args
                else:
                    await inner.parse(data[p : eol + 2])  # malformed: nats-py's error
                    p = eol + 2
                    continue
                header_size = 0
            elif head == b"HMSG":
                args = data[p + 5 : eol].split()
                if len(args) == 4:
                    subject, sid, hsize, size = args
                    reply = b""
                elif len(args) == 5:
                    subject, sid, reply, hsize, size = args
                else:
                    await inner.parse(data[p : eol + 2])
                    p = eol + 2
                    continue
                header_size = int(hsize)
            else:  # a control line: INFO, PING, PONG, +OK, -ERR
                await inner.parse(data[p : eol + 2])
                p = eol + 2
                continue
            start = eol + 2
            end = start + int(size)
            if end + 2 > n:  # the payload is not all here yet: kept as parts until it is
                self._frame = (subject, int(sid), reply, header_size, start - p, end - p)
                self._need = end + 2 - p
                break
            handler = handlers.get(int(sid))
            if handler is None:
                await inner.parse(data[p : end + 2])
            else:
                stats["in_msgs"] += 1
                stats["in_bytes"] += end - start - header_size
                if header_size:
                    hdr = data[start : start + header_size]
                    await handler(subject, reply, hdr, data[start + header_size : end])
                else:
                    await handler(subject, reply, None, data[start:end])
            p = end + 2
        if p < n:
            self._parts = [memoryview(data)[p:] if p else data]
            self._have = n - p

    async def _complete(self, parts: list[bytes | memoryview], frame: _Frame) -> None:
        """Hand over the frame that ``parts`` complete (they start at its control line): its
        header block and payload are each copied once from the parts, whatever their number."""
        subject, sid, reply, header_size, start, end = frame
        handler = self.handlers.get(sid)
        if handler is None:
            await self.inner.parse(_span(parts, 0, end + 2))
            return
        stats = self.nc.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += end - start - header_size
        hdr = _span(parts, start, start + header_size) if header_size else None
        await handler(subject, reply, hdr, _span(parts, start + header_size, end))

    async def _finish_inner(self, data: bytes) -> bytes:
        """Let nats-py's parser complete the frame it holds part of (it had the stream before
        :func:`install`); returns what is left of ``data`` after that frame."""
        inner = self.inner
        if inner.state == 1:  # AWAITING_CONTROL_LINE: nothing consumed yet, take it over
            data = bytes(inner.buf) + data
            inner.buf.clear()
            return data
        missing = max(0, inner.needed + 2 - len(inner.buf))  # AWAITING_MSG_PAYLOAD
        await inner.parse(data[:missing])
        return data[missing:]


def _span(parts: list[bytes | memoryview], a: int, b: int) -> bytes:
    """Bytes ``a`` to ``b`` of the concatenation of ``parts``, copied once."""
    pieces: list[bytes | memoryview] = []
    pos = 0
    for part in parts:
        size = len(part)
        lo, hi = max(a - pos, 0), min(b - pos, size)
        if lo < hi:
            pieces.append(part if lo == 0 and hi == size else memoryview(part)[lo:hi])
        pos += size
        if pos >= b:
            break
    first = pieces[0] if len(pieces) == 1 else None
    return first if type(first) is bytes else b"".join(pieces)


def install(nc: Any) -> FrameSplitter | None:
    """Put a :class:`FrameSplitter` in front of ``nc``'s parser (once); None when not possible."""
    ps = getattr(nc, "_ps", None)
    if isinstance(ps, FrameSplitter):
        return ps
    if (
        ps is None
        or not all(hasattr(ps, name) for name in _INNER)
        or not hasattr(nc, "_process_headers")
    ):
        log.info("nats client parser not recognised: pull consumers use nats-py's message path")
        return None
    splitter = FrameSplitter(nc, ps)
    nc._ps = splitter
    return splitter
