"""The raw text of each EventList item, for dead letters that keep it byte for byte.

The scanner (:mod:`processor.records.jsonscan` and its native twin) locates items only in input it
is sure of; anything doubtful (exponents, deep nesting, surrogate escapes) is decoded whole with
orjson, which gives values, not their text. A dead letter must keep what the producer sent
(``docs/reliability.md``), so for such input :func:`list_item_spans` finds the items' spans in the
bytes orjson already accepted. It tokenises with one regular expression (strings whole, then
structural characters), so it costs a pass in C over the payload, taken only when an item of a
doubtful list is dead-lettered.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

import orjson

__all__ = ["ListSpans", "list_item_spans", "member_span"]

# A string (whole, escapes included) or one structural character.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)
_WS = b" \t\n\r"


def list_item_spans(payload: bytes | str) -> list[tuple[int, int]] | None:
    """Spans ``(start, end)`` of the items of the top-level object's ``items`` array.

    ``payload`` must be JSON that orjson accepts. As orjson does, the last ``items`` member wins
    when the key repeats, and keys are compared after unescaping.

    Returns:
        One span per item, in order (``payload[start:end]`` is the item's text), or None when
        the top level is not an object or has no ``items`` array.
    """
    buf = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    depth = 0
    found: list[tuple[int, int]] | None = None
    items: list[tuple[int, int]] | None = None  # the items array being read (at depth 2)
    seg = 0  # where the current item's text starts: after the array's "[" or the last ","
    expect_key = False
    is_items = False
    for m in _TOKEN.finditer(buf):
        c = buf[m.start()]
        if c == 0x22:  # a string: a key at depth 1, else a value (its text is in a segment)
            if depth == 1 and expect_key:
                is_items = _key(m.group()) == "items"
                expect_key = False
        elif c == 0x5B or c == 0x7B:  # [ {
            depth += 1
            if depth == 1:
                if c != 0x7B:
                    return None
                expect_key = True
            elif depth == 2 and is_items and c == 0x5B:
                items, seg = [], m.end()
        elif c == 0x5D or c == 0x7D:  # ] }
            if items is not None and depth == 2:  # the end of the items array
                span = _strip(buf, seg, m.start())
                if span is not None:
                    items.append(span)
                found, items = items, None
            depth -= 1
        elif c == 0x2C:  # ,
            if items is not None and depth == 2:
                span = _strip(buf, seg, m.start())
                if span is not None:
                    items.append(span)
                seg = m.end()
            elif depth == 1:
                expect_key, is_items = True, False
        elif depth == 1 and is_items:  # the colon after "items": the last such member wins
            nxt = _skip_ws(buf, m.end())
            if nxt >= len(buf) or buf[nxt] != 0x5B:
                found, is_items = None, False
    return found


def member_span(payload: bytes, key: str) -> tuple[int, int] | None:
    """The span of the top-level object's member ``key`` (the last one, as orjson reads it).

    ``payload`` must be JSON that orjson accepts; None when the top level is not an object or
    has no such member.
    """
    depth = 0
    found: tuple[int, int] | None = None
    seg = -1  # where the value being read starts (after the colon), -1 when not ours
    expect_key = is_key = False
    for m in _TOKEN.finditer(payload):
        c = payload[m.start()]
        if c == 0x22:
            if depth == 1 and expect_key:
                is_key = _key(m.group()) == key
                expect_key = False
        elif c == 0x5B or c == 0x7B:
            depth += 1
            if depth == 1:
                if c != 0x7B:
                    return None
                expect_key = True
        elif c == 0x5D or c == 0x7D or c == 0x2C:
            if depth == 1 and seg >= 0:
                found, seg = _strip(payload, seg, m.start()), -1
            if c == 0x2C:
                expect_key = depth == 1 or expect_key
            else:
                depth -= 1
        elif depth == 1 and is_key:  # the colon after the key
            seg, is_key = m.end(), False
    return found


def _key(tok: bytes) -> str:
    if b"\\" not in tok:
        return tok[1:-1].decode("utf-8", "replace")
    try:
        key = orjson.loads(tok)
    except orjson.JSONDecodeError:
        return ""
    return key if isinstance(key, str) else ""


def _skip_ws(buf: bytes, i: int) -> int:
    n = len(buf)
    while i < n and buf[i] in _WS:
        i += 1
    return i


def _strip(buf: bytes, start: int, stop: int) -> tuple[int, int] | None:
    """``(start, stop)`` without the surrounding whitespace; None when nothing is left."""
    while start < stop and buf[start] in _WS:
        start += 1
    while stop > start and buf[stop - 1] in _WS:
        stop -= 1
    return (start, stop) if start < stop else None


class ListSpans:
    """The text of each item of an EventList payload, found when first needed.

    Args:
        payload: the EventList's bytes (valid JSON).
        items: its decoded items (to re-encode one if its span cannot be found); None when
            the caller has no decoded list (the fast path), where spans are always found.
    """

    __slots__ = ("_items", "_spans", "_starts", "payload")

    def __init__(self, payload: bytes, items: list[Any] | None) -> None:
        self.payload = payload
        self._items = items
        self._spans: list[tuple[int, int]] | None = None
        self._starts: list[int] | None = None

    def _all(self) -> list[tuple[int, int]]:
        if self._spans is None:
            found = list_item_spans(self.payload)
            ok = found is not None and (self._items is None or len(found) == len(self._items))
            self._spans = found if ok and found is not None else []
        return self._spans

    def origin(self, i: int) -> tuple[bytes, int, int]:
        """``(buffer, start, end)`` of item ``i``'s text (re-encoded from its value if its span
        is unknown)."""
        spans = self._all()
        if i < len(spans):
            return self.payload, *spans[i]
        value = orjson.dumps(self._items[i]) if self._items is not None else b"null"
        return value, 0, len(value)

    def text(self, i: int) -> bytes:
        """Item ``i``'s text."""
        buf, start, end = self.origin(i)
        return buf[start:end]

    def index_of(self, start: int, end: int) -> int:
        """The index of the item whose text is ``payload[start:end]``."""
        spans = self._all()
        if self._starts is None:
            self._starts = [s for s, _ in spans]
        i = bisect.bisect_left(self._starts, start)
        if i < len(spans) and spans[i] == (start, end):
            return i
        raise LookupError(f"no EventList item at bytes {start}-{end}")
