"""One pass over an ingest list body: validate it, find each item's span and partition.

The specification of the native ``processor._native.ingestsplit`` (``_native/ingestsplit.pyx``),
which gives identical results; the ingest's fast path (:mod:`processor.ingest.body`) uses the
native one and decodes nothing of a body but the top-level ``kind`` and ``apiVersion``: items are
published as the sender wrote them.

:func:`split_list` accepts a body only when orjson reads it to the same values: strict RFC 8259,
UTF-8 without surrogates. Anything doubtful returns None and the caller decodes the body whole
(the exact path, which also gives the reason of a 400): invalid JSON, a ``\\u`` escape of a
surrogate, a number with an exponent or more than :data:`MAX_DIGITS` digits, nesting deeper than
:data:`MAX_DEPTH`, an escaped top-level key, ``items`` given twice, or more than
:data:`MAX_MEMBERS` top-level members.

Each item gets a code: its partition (``>= 0``) for an object, computed as
:func:`processor.subjects.audit_partition` / :func:`~processor.subjects.event_partition` compute
it from the decoded item (keys compared as written, the last of a repeated key wins, as orjson
reads them); :data:`UNDECIDED` for an object whose key needs unescaping (an escaped key in the
item or its key object, an escaped key field, a number as an Event's ``regarding``), which the
caller decodes; or the JSON type of an item that is not an object (:data:`TYPES`).
"""

from __future__ import annotations

import re

from processor.subjects import partition_of

__all__ = ["MAX_DEPTH", "MAX_DIGITS", "MAX_MEMBERS", "TYPES", "UNDECIDED", "Split", "split_list"]

MAX_DEPTH = 200
MAX_DIGITS = 15
MAX_MEMBERS = 64
UNDECIDED = -1
NULL, BOOL, NUMBER, STRING, ARRAY = -2, -3, -4, -5, -6
#: Item code -> a value of that JSON type (for the messages of :mod:`processor._json` helpers).
TYPES: dict[int, object] = {NULL: None, BOOL: False, NUMBER: 0, STRING: "", ARRAY: []}

#: ``(members, items)``: ``[(key, start, end)]`` and ``[(start, end, code)]`` or None.
Split = tuple[list[tuple[str, int, int]], list[tuple[int, int, int]] | None]

_WS = b" \t\n\r"
_NUMBER = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
_ESCAPE = re.compile(rb'\\(?:u([0-9a-fA-F]{4})|["\\/bfnrt])')
#: key sets: the item's members, then the fields of its key object, in key order
_AUDIT_ITEM = ("objectRef",)
_EVENT_ITEM = ("regarding", "involvedObject")
_OBJECT_REF = ("apiGroup", "resource", "namespace", "name")
_INVOLVED = ("apiVersion", "kind", "namespace", "name")


class _Invalid(Exception):
    """Not certainly what orjson reads the same way."""


def split_list(body: bytes, audit: bool, partitions: int) -> Split | None:
    """The members of the body's top-level object and the items of its ``items`` array.

    Args:
        body: the request body.
        audit: route items as audit events (``objectRef``) rather than Kubernetes Events.
        partitions: the partition count.

    Returns:
        ``(members, items)``: ``members`` ``[(key, start, end)]`` in order (``body[start:end]``
        is the value's text), ``items`` ``[(start, end, code)]`` of the ``items`` array, None
        when ``items`` is missing or not an array; None when the body is doubtful.

    Raises:
        ValueError: ``partitions`` is less than 1.
    """
    if partitions < 1:
        raise ValueError(f"partition count must be >= 1, got {partitions}")
    try:
        return _Splitter(body, audit, partitions).run()
    except _Invalid:
        return None


class _Splitter:
    def __init__(self, body: bytes, audit: bool, partitions: int) -> None:
        self.s = body
        self.n = len(body)
        self.audit = audit
        self.partitions = partitions

    def ws(self, i: int) -> int:
        while i < self.n and self.s[i] in _WS:
            i += 1
        return i

    def at(self, i: int) -> int:
        """The byte at ``i``; invalid past the end."""
        if i >= self.n:
            raise _Invalid
        return self.s[i]

    def run(self) -> Split:
        s = self.s
        i = self.ws(0)
        if self.at(i) != 0x7B:
            raise _Invalid
        members: list[tuple[str, int, int]] = []
        items: list[tuple[int, int, int]] | None = None
        i = self.ws(i + 1)
        if i < self.n and s[i] == 0x7D:
            i += 1
        else:
            while True:
                if self.at(i) != 0x22 or len(members) >= MAX_MEMBERS:
                    raise _Invalid
                k, escaped = self.string(i + 1)
                if escaped:
                    raise _Invalid
                key = s[i + 1 : k - 1].decode()
                j = self.ws(k)
                if self.at(j) != 0x3A:
                    raise _Invalid
                a = self.ws(j + 1)
                if key == "items" and a < self.n and s[a] == 0x5B:
                    if items is not None:
                        raise _Invalid
                    items = []
                    j = self.items(a, items)
                else:
                    j = self.check(a, 1)
                members.append((key, a, j))
                i = self.ws(j)
                c = self.at(i)
                if c == 0x2C:
                    i = self.ws(i + 1)
                    continue
                if c != 0x7D:
                    raise _Invalid
                i += 1
                break
        if self.ws(i) != self.n:
            raise _Invalid
        return members, items

    # -- validation ------------------------------------------------------------------------------
    def string(self, i: int) -> tuple[int, bool]:
        """``s[i]`` is just after the opening quote: (the index after the closing quote, whether
        the text has escapes)."""
        s = self.s
        end = i
        escaped = False
        while True:
            c = self.at(end)
            if c == 0x22:
                break
            if c == 0x5C:
                m = _ESCAPE.match(s, end)
                if m is None:
                    raise _Invalid
                if m.group(1) is not None and 0xD800 <= int(m.group(1), 16) <= 0xDFFF:
                    raise _Invalid
                escaped = True
                end = m.end()
                continue
            if c < 0x20:
                raise _Invalid
            end += 1
        try:
            s[i:end].decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid from None
        return end + 1, escaped

    def check(self, i: int, depth: int) -> int:
        """Validate the value at ``s[i]`` at nesting ``depth``; the index after it."""
        s = self.s
        c = self.at(i)
        if c == 0x22:
            return self.string(i + 1)[0]
        if c == 0x7B:
            return self.fields(i, depth, (), [])[0]
        if c == 0x5B:
            if depth >= MAX_DEPTH:
                raise _Invalid
            i = self.ws(i + 1)
            if self.at(i) == 0x5D:
                return i + 1
            while True:
                i = self.ws(self.check(i, depth + 1))
                c = self.at(i)
                if c == 0x2C:
                    i = self.ws(i + 1)
                    continue
                if c != 0x5D:
                    raise _Invalid
                return i + 1
        for word in (b"true", b"false", b"null"):
            if c == word[0]:
                if s[i : i + len(word)] != word:
                    raise _Invalid
                return i + len(word)
        m = _NUMBER.match(s, i)
        if m is None:
            raise _Invalid
        digits = len(m.group(1)) + (len(m.group(2)) - 1 if m.group(2) else 0)
        if (m.end() < self.n and s[m.end()] in b"eE") or digits > MAX_DIGITS:
            raise _Invalid
        return m.end()

    def fields(
        self, i: int, depth: int, keys: tuple[str, ...], spans: list[tuple[int, int] | None]
    ) -> tuple[int, bool]:
        """Validate the object at ``s[i]``; the spans of its members named in ``keys`` into
        ``spans`` (the last of a repeated key wins). (The index after it, whether a key has
        escapes.)"""
        if depth >= MAX_DEPTH:
            raise _Invalid
        s = self.s
        doubt = False
        i = self.ws(i + 1)
        if i < self.n and s[i] == 0x7D:
            return i + 1, doubt
        while True:
            if self.at(i) != 0x22:
                raise _Invalid
            k, escaped = self.string(i + 1)
            j = self.ws(k)
            if self.at(j) != 0x3A:
                raise _Invalid
            a = self.ws(j + 1)
            j = self.check(a, depth + 1)
            if escaped:
                doubt = True
            else:
                key = s[i + 1 : k - 1].decode()
                if key in keys:
                    spans[keys.index(key)] = (a, j)
            i = self.ws(j)
            c = self.at(i)
            if c == 0x2C:
                i = self.ws(i + 1)
                continue
            if c != 0x7D:
                raise _Invalid
            return i + 1, doubt

    # -- the items -------------------------------------------------------------------------------
    def items(self, i: int, out: list[tuple[int, int, int]]) -> int:
        i = self.ws(i + 1)
        if i < self.n and self.s[i] == 0x5D:
            return i + 1
        while True:
            end, code = self.item(i)
            out.append((i, end, code))
            i = self.ws(end)
            c = self.at(i)
            if c == 0x2C:
                i = self.ws(i + 1)
                continue
            if c != 0x5D:
                raise _Invalid
            return i + 1

    def item(self, i: int) -> tuple[int, int]:
        """Validate the list item at ``s[i]``: (the index after it, its code)."""
        c = self.at(i)
        if c != 0x7B:
            end = self.check(i, 2)
            if c == 0x6E:
                return end, NULL
            if c in (0x74, 0x66):
                return end, BOOL
            if c == 0x22:
                return end, STRING
            return end, ARRAY if c == 0x5B else NUMBER
        spans: list[tuple[int, int] | None] = [None, None]
        end, doubt = self.fields(i, 2, _AUDIT_ITEM if self.audit else _EVENT_ITEM, spans)
        if doubt:
            return end, UNDECIDED
        if self.audit:
            return end, self.partition(spans[0], _OBJECT_REF)
        # regarding, or involvedObject when regarding is falsy (subjects.event_partition_key)
        truth = self.truth(spans[0])
        if truth is None:
            return end, UNDECIDED
        return end, self.partition(spans[0] if truth else spans[1], _INVOLVED)

    def truth(self, span: tuple[int, int] | None) -> bool | None:
        """Python's truth of the value at ``span`` (absent: False); None for a number."""
        if span is None:
            return False
        a, b = span
        c = self.s[a]
        if c in (0x6E, 0x66):
            return False
        if c == 0x74:
            return True
        if c == 0x22:
            return b - a > 2
        if c in (0x7B, 0x5B):
            return self.ws(a + 1) != b - 1
        return None

    def partition(self, span: tuple[int, int] | None, keys: tuple[str, ...]) -> int:
        """The partition of the key object at ``span`` (not an object: the empty key)."""
        s = self.s
        fields: list[tuple[int, int] | None] = [None] * 4
        if span is not None and s[span[0]] == 0x7B and self.fields(span[0], 3, keys, fields)[1]:
            return UNDECIDED
        texts = []
        for field in fields:
            if field is None or s[field[0]] != 0x22:
                texts.append("")
                continue
            raw = s[field[0] + 1 : field[1] - 1]
            if b"\\" in raw:
                return UNDECIDED
            texts.append(raw.decode())
        a, b, c, d = texts
        return partition_of(a, b, c, d, self.partitions)
