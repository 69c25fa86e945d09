"""Continue tokens: keyset position + query-parameter hash + issue time, signed (HMAC-SHA256).

A token is ``<payload>.<mac>``: ``payload`` is base64url (no padding) of compact JSON::

    {"v": 2, "k": [<sort key of the last row>], "w": [start_ns, end_ns], "h": "<hash>", "i": <ms>}

and ``mac`` is base64url (no padding) of HMAC-SHA256 over the exact ASCII text of ``payload``,
with the first of the configured :class:`~processor.query.tokenkeys.TokenKeys`; any of them
verifies (key rotation). The MAC is checked before anything in the payload is read, so an
edited, unsigned (``v`` 1) or foreign token is rejected with :class:`CursorError`.

``h`` is the first 16 bytes (hex) of SHA-256 over the canonical JSON of the raw request
parameters (table, filter, search, times as typed, limit, scope...), so a token cannot be used
with other parameters. ``w`` is the window resolved on the first page: relative times such as
``now-7d`` do not slide between pages (upstream re-resolves them, which can skip rows); even a
validly signed window is checked again (:func:`check_window`). Tokens expire one hour after they
were issued; every page issues a fresh one. The key values are passed back to ClickHouse as typed
parameters only, so a forged token could not change the SQL either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from processor.query.errors import CursorError
from processor.query.timeparse import NS, format_duration, parse_time
from processor.query.tokenkeys import TokenKeys

VERSION = 2
TTL_MS = 3600 * 1000
_SKEW_MS = 5 * 60 * 1000
_MAX_TOKEN = 8192
_RESTART = "; start a new query without --continue"


def params_hash(params: Mapping[str, Any]) -> str:
    """The binding hash of a request's raw parameters (order-insensitive)."""
    canonical = orjson.dumps(dict(params), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).digest()[:16].hex()


@dataclass(frozen=True)
class Cursor:
    """A decoded token: the last row's sort key and the first page's resolved window."""

    key: tuple[str | int, ...]
    start_ns: int
    end_ns: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def _invalid(reason: str) -> CursorError:
    return CursorError(f"the continue token is not valid: {reason}{_RESTART}")


def encode(cursor: Cursor, binding: str, now_ms: int, keys: TokenKeys) -> str:
    """Issue a token for ``cursor`` bound to ``binding`` (a :func:`params_hash`), signed."""
    doc = {
        "v": VERSION,
        "k": list(cursor.key),
        "w": [cursor.start_ns, cursor.end_ns],
        "h": binding,
        "i": now_ms,
    }
    payload = _b64(orjson.dumps(doc))
    return f"{payload}.{_mac(keys.signing, payload)}"


def decode(token: str, binding: str, key_length: int, now_ms: int, keys: TokenKeys) -> Cursor:
    """Verify and decode a token (signature first, then version, binding, shape and age).

    Raises:
        CursorError: unsigned or signed with an unknown key, altered, malformed, bound to other
            parameters, expired, or issued in the future.
    """
    doc = _load(_verify(token, keys))
    if doc.get("h") != binding:
        raise CursorError(
            "cannot use the continue token because the query parameters changed" + _RESTART
        )
    key, window, issued = doc.get("k"), doc.get("w"), doc.get("i")
    if (
        not _is_key(key, key_length)
        or not (isinstance(window, list) and len(window) == 2)
        or not all(type(x) is int for x in window)
        or type(issued) is not int
    ):
        raise _invalid("malformed content")
    age = now_ms - issued
    if age > TTL_MS:
        raise CursorError(
            f"the continue token expired after {format_duration(age // 1000 * 10**9)}; tokens "
            "are valid for 1h" + _RESTART
        )
    if age < -_SKEW_MS:
        raise CursorError("the continue token was issued in the future; start a new query")
    assert isinstance(key, list) and isinstance(window, list)
    return Cursor(tuple(key), window[0], window[1])


def _verify(token: str, keys: TokenKeys) -> str:
    """The payload of ``token`` if its MAC matches one of ``keys``."""
    if not token or len(token) > _MAX_TOKEN or not token.isascii():
        raise _invalid("malformed")
    payload, dot, mac = token.rpartition(".")
    if not dot:
        raise _invalid("it is not signed (tokens of older versions are not accepted)")
    given = mac.encode()
    if not any(hmac.compare_digest(_mac(key, payload).encode(), given) for key in keys.keys):
        raise _invalid("signature mismatch")
    return payload


def _load(payload: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        raise _invalid("malformed") from None
    if not isinstance(doc, dict) or doc.get("v") != VERSION:
        raise _invalid(f"unsupported version (expected {VERSION})")
    return doc


def check_window(cur: Cursor, start: str, end: str, max_window_ns: int, now_ns: int) -> None:
    """Check a verified token's window against the limit and the request's ``start``/``end``.

    Defence in depth (the window is signed and the times are in the binding hash): the window
    must be non-empty, at most ``max_window_ns`` long, not end in the future, and be what
    ``start``/``end`` resolved to on the first page: an absolute time exactly, relative times
    (``now-7d``) at one common instant no later than now (plus clock skew).

    Raises:
        CursorError: the window breaks one of these rules.
        TimeRangeError: ``start`` or ``end`` is not a valid time.
    """
    length = cur.end_ns - cur.start_ns
    if length <= 0:
        raise _invalid("its time window is empty")
    if length > max_window_ns:
        raise _invalid(
            f"its time window of {format_duration(length)} exceeds the maximum of "
            f"{format_duration(max_window_ns)}"
        )
    skew_ns = _SKEW_MS * (NS // 1000)
    if cur.end_ns > now_ns + skew_ns:
        raise _invalid("its time window ends in the future")
    anchors = set()
    for text, value in ((start, cur.start_ns), (end, cur.end_ns)):
        expected = parse_time(text, now_ns)
        if text.strip().startswith("now"):
            anchors.add(value - expected)  # the first page's "now" minus this one
        elif value != expected:
            raise _invalid("its time window does not match --start/--end")
    if len(anchors) > 1 or any(anchor > skew_ns for anchor in anchors):
        raise _invalid("its time window does not match --start/--end")


def _is_key(key: object, length: int) -> bool:
    if not isinstance(key, list) or len(key) != length:
        return False
    return isinstance(key[0], int) and all(isinstance(v, str) for v in key[1:])


def key_of(row: Mapping[str, Any], length: int) -> tuple[str | int, ...]:
    """The sort key of a result row (columns ``k0..kN``; ``k0`` is epoch nanoseconds)."""
    values: list[str | int] = [int(row["k0"])]
    values += [str(row[f"k{i}"]) for i in range(1, length)]
    return tuple(values)
