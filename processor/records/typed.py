"""An audit event decoded from its bytes straight into its normalised values (the typed decode).

The fast path's decoder (twin of ``_native/typed.pyx``; this module is the specification). The
scanner (:mod:`processor.records.jsonscan`) has validated the payload; here the event's members
are walked from the bytes with the scanner's primitives and each field becomes the value
:func:`processor.records.decode_audit` gives it -- upstream's Go round trip: defaults, empty
fields omitted, numbers as floats, the two timestamps in the 6-digit UTC layout -- without
parsing JSON text into an intermediate dict and normalising that. The bodies
(``requestObject``, ``responseObject``) are materialised only as far as the policies read them
(``needs``, :func:`processor.cel.needs.body_needs`), exactly as
:func:`processor.records.lazy.decode_audit_split` prunes them.

Anything unusual gives None, and the caller hands the record to the reference path (which gives
the exact result or dead letter): a key that is not exactly a field name (another case, an
unknown key, escapes) in the event, ``user``, ``objectRef`` or ``responseStatus``; a value of the
wrong type; a number out of range; a timestamp that does not parse.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

from processor.cel.needs import PRESENT, Need
from processor.records.audit import (
    _CAUSE_FIELDS,
    _DETAILS_FIELDS,
    _EVENT_FIELDS,
    _INT32_MAX,
    _INT32_MIN,
    _INT64_MAX,
    _INT64_MIN,
    _LIST_META_FIELDS,
    _OBJECT_REF_FIELDS,
    _STATUS_FIELDS,
    _USER_FIELDS,
)
from processor.records.jsonscan import _string, _value, _ws
from processor.records.timefmt import micro

__all__ = ["decode_audit_typed"]

#: ``needs``: per body, what the policies read; or a function of the event's index key
#: (``"<apiGroup>/<resource>"``) that gives it (called only when the event has a body and an
#: ``objectRef``; without an ``objectRef`` no body is kept: no policy reads such an event).
Needs = dict[str, Need] | Callable[[str], dict[str, Need]]

# upstream's field tables (processor/records/audit.py, the one home of the audit Event's shape)
_EVENT = _EVENT_FIELDS
_USER = _USER_FIELDS
_OBJECT_REF = _OBJECT_REF_FIELDS
_STATUS = _STATUS_FIELDS
_LIST_META = _LIST_META_FIELDS
_DETAILS = _DETAILS_FIELDS
_CAUSE = _CAUSE_FIELDS
_INT32 = (_INT32_MIN, _INT32_MAX)
_INT64 = (_INT64_MIN, _INT64_MAX)
_ZERO_TIME = "0001-01-01T00:00:00.000000Z"
_DIGITS = frozenset(b"0123456789")
_SEPARATORS = {4: 45, 7: 45, 10: 84, 13: 58, 16: 58, 19: 46, 26: 90}  # - - T : : . Z
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

Span = tuple[int, int]


class _Doubt(Exception):
    """Raised inside the decoder for anything unusual; the caller gets None."""


# -- members --------------------------------------------------------------------------------------
def _end(buf: bytes, i: int, n: int) -> int:
    """The index after the (validated) value at ``buf[i]``."""
    return _value(buf, i, n, 0, None)


def _members(
    buf: bytes, i: int, n: int, known: dict[int, int] | None = None
) -> list[tuple[int, int, bool, int, int]]:
    """The members of the (validated) object at ``buf[i]``: ``(ks, ke, escaped, vs, ve)``, the
    key's text being ``buf[ks:ke]`` (between the quotes). ``known`` maps the start of values the
    scanner has delimited already to their end: the walk jumps over them."""
    out: list[tuple[int, int, bool, int, int]] = []
    i = _ws(buf, i + 1, n)
    if buf[i] == 0x7D:
        return out
    while True:
        k, escaped = _string(buf, i + 1, n)
        a = _ws(buf, _ws(buf, k, n) + 1, n)
        b = known[a] if known and a in known else _end(buf, a, n)
        out.append((i + 1, k - 1, escaped, a, b))
        i = _ws(buf, b, n)
        if buf[i] == 0x2C:
            i = _ws(buf, i + 1, n)
            continue
        return out


def _items(buf: bytes, i: int, n: int) -> list[Span]:
    """The items of the (validated) array at ``buf[i]``."""
    out: list[Span] = []
    i = _ws(buf, i + 1, n)
    if buf[i] == 0x5D:
        return out
    while True:
        b = _end(buf, i, n)
        out.append((i, b))
        i = _ws(buf, b, n)
        if buf[i] == 0x2C:
            i = _ws(buf, i + 1, n)
            continue
        return out


def _fields(
    buf: bytes, i: int, n: int, names: tuple[str, ...], known: dict[int, int] | None = None
) -> dict[str, Span]:
    """The span of the last value of each member of the (validated) object at ``buf[i]``, by key,
    in first-seen order; a key that is not one of ``names`` (or has escapes) is doubtful."""
    spans: dict[str, Span] = {}
    for ks, ke, escaped, a, b in _members(buf, i, n, known):
        key = buf[ks:ke].decode("utf-8")
        if escaped or key not in names:
            raise _Doubt
        spans[key] = (a, b)
    return spans


def _given(buf: bytes, span: Span | None) -> bool:
    """Whether a member is there and not null."""
    return span is not None and buf[span[0]] != 0x6E


# -- leaves ---------------------------------------------------------------------------------------
def _text(buf: bytes, a: int, b: int) -> str:
    """The string value at ``buf[a:b]`` (with its quotes)."""
    raw = buf[a + 1 : b - 1]
    if 0x5C not in raw:
        return raw.decode("utf-8")
    text: str = orjson.loads(buf[a:b])  # one string leaf: its escapes
    return text


def _key(buf: bytes, ks: int, ke: int, escaped: bool) -> str:
    return _text(buf, ks - 1, ke + 1) if escaped else buf[ks:ke].decode("utf-8")


def _str(buf: bytes, a: int, b: int) -> str:
    """A Go ``string`` field: the string at ``buf[a:b]``, ``""`` for null; else doubtful."""
    c = buf[a]
    if c == 0x22:
        return _text(buf, a, b)
    if c == 0x6E:
        return ""
    raise _Doubt


def _number(buf: bytes, a: int, b: int) -> float:
    """The (validated) number at ``buf[a:b]`` as the full decode gives it (an int made float)."""
    raw = buf[a:b]
    return float(raw) if 0x2E in raw else float(int(raw))


def _int(buf: bytes, span: Span, bounds: tuple[int, int]) -> float:
    """A Go integer field (not null) as a float; doubtful unless a whole number in ``bounds``."""
    a, b = span
    c = buf[a]
    if not (c == 0x2D or 0x30 <= c <= 0x39):
        raise _Doubt
    v = _number(buf, a, b)
    if math.isnan(v) or not bounds[0] <= v <= bounds[1] or not v.is_integer():
        raise _Doubt
    return v


def _load(buf: bytes, a: int, n: int) -> Any:
    """The (validated) value at ``buf[a]`` as the full decode gives it, numbers as floats."""
    c = buf[a]
    if c == 0x22:
        return _text(buf, a, _end(buf, a, n))
    if c == 0x7B:
        members = _members(buf, a, n)
        return {_key(buf, ks, ke, esc): _load(buf, vs, ve) for ks, ke, esc, vs, ve in members}
    if c == 0x5B:
        return [_load(buf, s, e) for s, e in _items(buf, a, n)]
    if c == 0x74:
        return True
    if c == 0x66:
        return False
    if c == 0x6E:
        return None
    return _number(buf, a, _end(buf, a, n))


def _timestamp(buf: bytes, span: Span) -> str | None:
    """A ``v1.MicroTime`` (not null) in the 6-digit UTC layout (None: the zero time); doubtful
    unless a string RFC3339 date-time."""
    a, b = span
    if buf[a] != 0x22:
        raise _Doubt
    p = buf[a + 1 : b - 1]
    if len(p) == 27 and all(
        p[j] == _SEPARATORS[j] if j in _SEPARATORS else p[j] in _DIGITS for j in range(27)
    ):
        year, month, day = int(p[0:4]), int(p[5:7]), int(p[8:10])
        days = 29 if month == 2 and year % 4 == 0 and (year % 100 or year % 400 == 0) else 0
        if not (
            year >= 1
            and 1 <= month <= 12
            and 1 <= day <= (days or _DAYS[month - 1])
            and int(p[11:13]) <= 23
            and int(p[14:16]) <= 59
            and int(p[17:19]) <= 59
        ):
            raise _Doubt
        text = p.decode("ascii")
        return None if text == _ZERO_TIME else text
    try:
        return micro(_text(buf, a, b))
    except ValueError:
        raise _Doubt from None


def _string_list(buf: bytes, span: Span) -> list[str]:
    """A Go ``[]string`` (not null): null items read ``""``."""
    if buf[span[0]] != 0x5B:
        raise _Doubt
    return [_str(buf, s, e) for s, e in _items(buf, span[0], span[1])]


def _strings(buf: bytes, spans: dict[str, Span], names: tuple[str, ...], out: dict) -> None:
    """Copy each of ``names``, a Go ``string`` with ``omitempty``, into ``out`` when not empty."""
    for name in names:
        span = spans.get(name)
        if span is not None:
            v = _str(buf, *span)
            if v:
                out[name] = v


def _object(buf: bytes, span: Span, names: tuple[str, ...]) -> dict[str, Span]:
    if buf[span[0]] != 0x7B:
        raise _Doubt
    return _fields(buf, span[0], span[1], names)


# -- structs --------------------------------------------------------------------------------------
def _user(buf: bytes, span: Span) -> dict[str, Any]:
    """A ``v1.UserInfo`` (not null)."""
    spans = _object(buf, span, _USER)
    out: dict[str, Any] = {}
    _strings(buf, spans, ("username", "uid"), out)
    groups = spans.get("groups")
    if _given(buf, groups):
        values = _string_list(buf, groups)  # type: ignore[arg-type]
        if values:
            out["groups"] = values
    extra = spans.get("extra")
    if _given(buf, extra):
        a, b = extra  # type: ignore[misc]
        if buf[a] != 0x7B:
            raise _Doubt
        found = {
            _key(buf, ks, ke, esc): None if buf[vs] == 0x6E else _string_list(buf, (vs, ve))
            for ks, ke, esc, vs, ve in _members(buf, a, b)
        }
        if found:
            out["extra"] = found
    return out


def _object_ref(buf: bytes, span: Span) -> dict[str, str]:
    """A ``v1.ObjectReference`` (not null): its non-empty strings, in the input's order."""
    out: dict[str, str] = {}
    spans = _object(buf, span, _OBJECT_REF)
    _strings(buf, spans, tuple(spans), out)
    return out


def _list_meta(buf: bytes, span: Span) -> dict[str, Any]:
    spans = _object(buf, span, _LIST_META)
    out: dict[str, Any] = {}
    _strings(buf, spans, ("selfLink", "resourceVersion", "continue"), out)
    count = spans.get("remainingItemCount")
    if _given(buf, count):
        out["remainingItemCount"] = _int(buf, count, _INT64)  # type: ignore[arg-type]
    return out


def _cause(buf: bytes, span: Span) -> dict[str, str]:
    out: dict[str, str] = {}
    if buf[span[0]] == 0x6E:
        return out
    _strings(buf, _object(buf, span, _CAUSE), _CAUSE, out)
    return out


def _details(buf: bytes, span: Span) -> dict[str, Any]:
    spans = _object(buf, span, _DETAILS)
    out: dict[str, Any] = {}
    _strings(buf, spans, ("name", "group", "kind", "uid"), out)
    causes = spans.get("causes")
    if _given(buf, causes):
        a, b = causes  # type: ignore[misc]
        if buf[a] != 0x5B:
            raise _Doubt
        found = [_cause(buf, item) for item in _items(buf, a, b)]
        if found:
            out["causes"] = found
    retry = spans.get("retryAfterSeconds")
    if _given(buf, retry):
        r = _int(buf, retry, _INT32)  # type: ignore[arg-type]
        if r:
            out["retryAfterSeconds"] = r
    return out


def _status(buf: bytes, span: Span) -> dict[str, Any]:
    """A ``v1.Status`` (not null); ``metadata`` is always there."""
    spans = _object(buf, span, _STATUS)
    out: dict[str, Any] = {}
    _strings(buf, spans, ("kind", "apiVersion"), out)
    meta = spans.get("metadata")
    out["metadata"] = _list_meta(buf, meta) if _given(buf, meta) else {}  # type: ignore[arg-type]
    _strings(buf, spans, ("status", "message", "reason"), out)
    details = spans.get("details")
    if _given(buf, details):
        out["details"] = _details(buf, details)  # type: ignore[arg-type]
    code = spans.get("code")
    if _given(buf, code):
        c = _int(buf, code, _INT32)  # type: ignore[arg-type]
        if c:
            out["code"] = c
    return out


def _annotations(buf: bytes, span: Span) -> dict[str, str]:
    """A ``map[string]string`` (not null): null values read ``""``."""
    a, b = span
    if buf[a] != 0x7B:
        raise _Doubt
    members = _members(buf, a, b)
    return {_key(buf, ks, ke, esc): _str(buf, vs, ve) for ks, ke, esc, vs, ve in members}


# -- bodies ---------------------------------------------------------------------------------------
def _prune(buf: bytes, a: int, b: int, need: Need) -> Any:
    """The (validated) value at ``buf[a:b]`` reduced to ``need`` (``jsonscan.prune``'s result):
    an object keeps the needed keys only (``"present"`` ones as None), unless a key has escapes;
    anything else is decoded whole."""
    if type(need) is not dict or buf[a] != 0x7B:
        return _load(buf, a, b)
    spans: dict[str, Span] = {}
    for ks, ke, escaped, vs, ve in _members(buf, a, b):
        if escaped:
            return _load(buf, a, b)
        key = buf[ks:ke].decode("utf-8")
        if key in need:
            spans[key] = (vs, ve)
    out: dict[str, Any] = {}
    for key, sub in need.items():
        span = spans.get(key)
        if span is not None:
            out[key] = None if sub == PRESENT else _prune(buf, *span, sub)
    return out


# -- the event ------------------------------------------------------------------------------------
def _event(buf: bytes, start: int, end: int, needs: Needs, known: dict[int, int]) -> dict[str, Any]:
    if buf[start] != 0x7B:
        raise _Doubt
    spans = _fields(buf, start, end, _EVENT, known)
    out: dict[str, Any] = {}
    _strings(buf, spans, ("kind", "apiVersion"), out)
    for name in ("level", "auditID", "stage", "requestURI", "verb"):
        span = spans.get(name)
        out[name] = "" if span is None else _str(buf, *span)
    user = spans.get("user")
    out["user"] = _user(buf, user) if _given(buf, user) else {}  # type: ignore[arg-type]
    span = spans.get("impersonatedUser")
    if _given(buf, span):
        out["impersonatedUser"] = _user(buf, span)  # type: ignore[arg-type]
    span = spans.get("sourceIPs")
    if _given(buf, span):
        ips = _string_list(buf, span)  # type: ignore[arg-type]
        if ips:
            out["sourceIPs"] = ips
    _strings(buf, spans, ("userAgent",), out)
    ref: dict[str, str] | None = None
    span = spans.get("objectRef")
    if _given(buf, span):
        ref = out["objectRef"] = _object_ref(buf, span)  # type: ignore[arg-type]
    span = spans.get("responseStatus")
    if _given(buf, span):
        out["responseStatus"] = _status(buf, span)  # type: ignore[arg-type]
    bodies = [(name, spans.get(name)) for name in ("requestObject", "responseObject")]
    if any(_given(buf, span) for _name, span in bodies):
        if not isinstance(needs, dict):
            key = None if ref is None else f"{ref.get('apiGroup', '')}/{ref.get('resource', '')}"
            needs = {} if key is None else needs(key)
        for name, span in bodies:
            need = needs.get(name)
            if span is not None and buf[span[0]] != 0x6E and need is not None:
                out[name] = _prune(buf, *span, need)
    for name in ("requestReceivedTimestamp", "stageTimestamp"):
        span = spans.get(name)
        out[name] = _timestamp(buf, span) if _given(buf, span) else None  # type: ignore[arg-type]
    span = spans.get("annotations")
    if _given(buf, span):
        annotations = _annotations(buf, span)  # type: ignore[arg-type]
        if annotations:
            out["annotations"] = annotations
    span = spans.get("authenticationMetadata")
    if _given(buf, span):
        if buf[span[0]] != 0x7B:  # type: ignore[index]
            raise _Doubt
        out["authenticationMetadata"] = _load(buf, *span)  # type: ignore[misc]
    return out


def decode_audit_typed(
    buf: bytes,
    start: int,
    end: int,
    needs: Needs,
    spans: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Any] | None:
    """The audit event at ``buf[start:end]`` decoded and normalised, bodies pruned to ``needs``.

    Args:
        buf: the payload bytes; ``buf[start:end]`` is a value the scanner accepted.
        needs: per body, what the policies read (absent: nothing), or a function of the index
            key that gives it (:data:`Needs`).
        spans: the spans of values the scanner has delimited already (the bodies, from
            ``split_document``), if at hand: the walk jumps over them.

    Returns:
        What :func:`processor.records.lazy.decode_audit_split` gives for the event; None when
        anything is unusual (see the module's docstring) -- the reference path decides then.
    """
    if start < 0 or end > len(buf) or start >= end:
        return None
    known = {s: e for s, e in spans.values()} if spans else {}
    try:
        return _event(buf, start, end, needs, known)
    except _Doubt:
        return None
