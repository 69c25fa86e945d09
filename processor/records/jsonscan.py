"""Validate JSON bytes and locate values without parsing them (twin of ``_native/jsonscan.pyx``).

This pure-Python module is the specification of the native scanner; both have the same functions
and give the same results. A document is accepted only when orjson certainly parses it to the same
values: strict RFC 8259, UTF-8 without surrogates. Doubtful input (a ``\\u`` escape of a
surrogate, a number with an exponent or more than :data:`MAX_DIGITS` digits, nesting of
:data:`MAX_DEPTH` containers or more, a top-level value that is not an object) is rejected, and
the caller takes the full-decode path, which gives the exact result or error.

Spans are ``(start, end)`` byte offsets: ``buf[start:end]`` is the value's JSON text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from typing import Any

from processor.records._json import floatify

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_MEMBERS",
    "array_items",
    "check_levels",
    "check_value",
    "floatify",
    "object_members",
    "prune",
    "scan_document",
    "split_document",
    "split_object",
]

MAX_DEPTH = 200
MAX_DIGITS = 15
MAX_MEMBERS = 64  # split_document/split_object: more top-level members is doubtful

Member = tuple[str | None, int, int]

_WS = re.compile(rb"[ \t\n\r]*")
_WS_BYTES = frozenset(b" \t\n\r")
_STRING = re.compile(rb'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
_SURROGATE = re.compile(rb"\\(?:u[dD][89a-fA-F][0-9a-fA-F]{2}|.)")
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
# byte values the scanner compares with (a name is cheaper than ord() in the loops)
_QUOTE, _COMMA, _COLON, _MINUS, _ZERO, _NINE = b'",:-09'
_LBRACE, _RBRACE, _LBRACKET, _RBRACKET = b"{}[]"
_WORDS = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}


class _Invalid(Exception):
    pass


def _ws(buf: bytes, i: int, n: int) -> int:
    if i >= n or buf[i] not in _WS_BYTES:  # compact JSON: no whitespace, no regex
        return i
    m = _WS.match(buf, i, n)
    return m.end() if m else i


def _string(buf: bytes, i: int, n: int) -> tuple[int, bool]:
    """``buf[i]`` follows the opening quote: (index after the closing quote, has escapes)."""
    m = _STRING.match(buf, i, n)
    if m is None:
        raise _Invalid
    end = m.end()
    body = buf[i : end - 1]
    escaped = b"\\" in body
    if escaped and any(len(e.group(0)) == 6 for e in _SURROGATE.finditer(body)):
        raise _Invalid
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid from None
    return end, escaped


def _number(buf: bytes, i: int, n: int) -> int:
    m = _NUMBER.match(buf, i, n)
    if m is None:
        raise _Invalid
    end = m.end()
    if end < n and buf[end] in b"eE":
        raise _Invalid
    if sum(c in b"0123456789" for c in buf[i:end]) > MAX_DIGITS:
        raise _Invalid
    return end


def _container(buf: bytes, i: int, n: int, depth: int, out: list | None) -> int:
    is_object = buf[i] == _LBRACE
    close = _RBRACE if is_object else _RBRACKET
    if depth >= MAX_DEPTH:
        raise _Invalid
    i = _ws(buf, i + 1, n)
    if i < n and buf[i] == close:
        return i + 1
    while True:
        if is_object:
            if i >= n or buf[i] != _QUOTE:
                raise _Invalid
            k, escaped = _string(buf, i + 1, n)
            j = _ws(buf, k, n)
            if j >= n or buf[j] != _COLON:
                raise _Invalid
            vs = _ws(buf, j + 1, n)
            j = _value(buf, vs, n, depth + 1, None)
            if out is not None:
                out.append((None if escaped else buf[i + 1 : k - 1].decode("utf-8"), vs, j, i))
        else:
            vs = i
            j = _value(buf, vs, n, depth + 1, None)
            if out is not None:
                out.append((vs, j))
        i = _ws(buf, j, n)
        if i >= n:
            raise _Invalid
        if buf[i] == _COMMA:
            i = _ws(buf, i + 1, n)
            continue
        if buf[i] == close:
            return i + 1
        raise _Invalid


def _value(buf: bytes, i: int, n: int, depth: int, out: list | None) -> int:
    if i >= n:
        raise _Invalid
    c = buf[i]
    if c == _QUOTE:
        return _string(buf, i + 1, n)[0]
    if c in b"{[":
        return _container(buf, i, n, depth, out)
    word = _WORDS.get(c)
    if word is not None:
        if i + len(word) > n or buf[i : i + len(word)] != word:
            raise _Invalid
        return i + len(word)
    if c == _MINUS or _ZERO <= c <= _NINE:
        return _number(buf, i, n)
    raise _Invalid


def check_value(buf: bytes, start: int = 0, depth: int = 0, level: int = 2) -> int:
    """The index after the JSON value at ``buf[start]`` (no leading whitespace) at nesting
    ``depth``, or -1 when it is invalid or doubtful. ``level`` picks the native scanner's form of
    validation (:func:`check_levels`); the twin has one form and ignores it."""
    if start < 0:
        return -1
    try:
        return _value(buf, start, len(buf), depth, None)
    except (_Invalid, RecursionError):
        return -1


def check_levels() -> list[int]:
    """The forms of validation :func:`check_value` can be asked for (the twin has one)."""
    return [0]


def scan_document(buf: bytes) -> list[Member] | None:
    """Validate ``buf`` as one JSON document whose value is an object; its members, or None.

    Returns:
        ``[(key, start, end), ...]`` in document order (``key`` None when it has escapes), or
        None when ``buf`` is not certainly a JSON object that orjson reads the same way.
    """
    n = len(buf)
    i = _ws(buf, 0, n)
    if i >= n or buf[i] != _LBRACE:
        return None
    out: list[tuple[str | None, int, int, int]] = []
    try:
        i = _value(buf, i, n, 0, out)
    except (_Invalid, RecursionError):
        return None
    return [m[:3] for m in out] if _ws(buf, i, n) == n else None


def object_members(buf: bytes, start: int, end: int) -> list[Member] | None:
    """The members of the object at ``buf[start:end]`` (a value :func:`scan_document` accepted),
    or None when that value is not an object."""
    if start >= end or buf[start] != _LBRACE:
        return None
    out: list[tuple[str | None, int, int, int]] = []
    try:
        _value(buf, start, end, 0, out)
    except (_Invalid, RecursionError):
        return None
    return [m[:3] for m in out]


Split = tuple[bytes, dict[str, tuple[int, int]], bytes]
_Raw = list[tuple[str | None, int, int, int]]


def _split(
    buf: bytes, members: _Raw, bodies: Container[str], route: Container[str]
) -> Split | None:
    parts: list[bytes] = []
    route_parts: list[bytes] = []
    spans: dict[str, tuple[int, int]] = {}
    if len(members) > MAX_MEMBERS:
        return None
    for key, vs, ve, ks in members:
        if key is None:
            return None
        if key in bodies:
            spans[key] = (vs, ve)
            parts.append(buf[ks:vs] + b"{}")
        else:
            parts.append(buf[ks:ve])
        route_parts.append(buf[ks:ve] if key in route else buf[ks:vs] + b"null")
    return b"{" + b",".join(parts) + b"}", spans, b"{" + b",".join(route_parts) + b"}"


def split_document(buf: bytes, bodies: Container[str], route: Container[str]) -> Split | None:
    """:func:`scan_document`, then the object split for lazy decoding.

    Returns:
        ``(text, spans, route_text)``: ``text`` is the top-level object's JSON with the value of
        every member whose key is in ``bodies`` replaced by ``{}``; ``spans`` maps those keys to
        the span of their last value; ``route_text`` keeps only the values of the ``route`` keys,
        every other key with a ``null`` value (for presence tests). None when
        :func:`scan_document` would be None or a key has escapes.
    """
    n = len(buf)
    i = _ws(buf, 0, n)
    if i >= n or buf[i] != _LBRACE:
        return None
    out: list[tuple[str | None, int, int, int]] = []
    try:
        i = _value(buf, i, n, 0, out)
    except (_Invalid, RecursionError):
        return None
    if _ws(buf, i, n) != n:
        return None
    return _split(buf, out, bodies, route)


def split_object(
    buf: bytes, start: int, end: int, bodies: Container[str], route: Container[str]
) -> Split | None:
    """:func:`split_document` of the object at ``buf[start:end]`` (already validated)."""
    if start >= end or buf[start] != _LBRACE:
        return None
    out: list[tuple[str | None, int, int, int]] = []
    try:
        _value(buf, start, end, 0, out)
    except (_Invalid, RecursionError):
        return None
    return _split(buf, out, bodies, route)


def array_items(buf: bytes, start: int, end: int) -> list[tuple[int, int]] | None:
    """The items ``(start, end)`` of the array at ``buf[start:end]``, None if not an array."""
    if start >= end or buf[start] != _LBRACKET:
        return None
    out: list[tuple[int, int]] = []
    try:
        _value(buf, start, end, 0, out)
    except (_Invalid, RecursionError):
        return None
    return out


def prune(buf: bytes, start: int, end: int, need: Any, loads: Callable[[bytes], Any]) -> Any:
    """The value at ``buf[start:end]`` (validated) reduced to ``need``, numbers as floats.

    ``need`` is ``"whole"``, ``"present"`` (only under a map) or a map of key -> need
    (:mod:`processor.cel.needs`): an object keeps only the needed keys, ``"present"`` ones with a
    None value; anything else, and an object with an escaped key, is decoded whole (``loads``).
    """
    if type(need) is dict:
        members = object_members(buf, start, end)
        if members is not None:
            last: dict[str, tuple[int, int]] = {}
            for key, s, e in members:
                if key is None:
                    break
                last[key] = (s, e)
            else:
                out: dict[str, Any] = {}
                for key, sub in need.items():
                    span = last.get(key)
                    if span is not None:
                        out[key] = None if sub == "present" else prune(buf, *span, sub, loads)
                return out
    return floatify(loads(buf[start:end]))
