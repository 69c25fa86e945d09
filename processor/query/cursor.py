"""Continue tokens: keyset position + query-parameter hash + issue time (storage-and-query §3).

A token is base64url (no padding) of compact JSON::

    {"v": 1, "k": [<sort key of the last row>], "w": [start_ns, end_ns], "h": "<hash>", "i": <ms>}

``h`` is the first 16 bytes (hex) of SHA-256 over the canonical JSON of the raw request
parameters (table, filter, search, times as typed, limit, scope...), so a token cannot be used
with other parameters. ``w`` is the window resolved on the first page: relative times such as
``now-7d`` do not slide between pages (upstream re-resolves them, which can skip rows). Tokens
expire one hour after they were issued; every page issues a fresh one. The key values are passed
back to ClickHouse as typed parameters only, so a forged token cannot change the SQL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from processor.query.errors import CursorError
from processor.query.timeparse import format_duration

TTL_MS = 3600 * 1000
_SKEW_MS = 5 * 60 * 1000
_MAX_TOKEN = 8192


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


def encode(cursor: Cursor, binding: str, now_ms: int) -> str:
    """Issue a token for ``cursor`` bound to ``binding`` (a :func:`params_hash`)."""
    doc = {
        "v": 1,
        "k": list(cursor.key),
        "w": [cursor.start_ns, cursor.end_ns],
        "h": binding,
        "i": now_ms,
    }
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()


def decode(token: str, binding: str, key_length: int, now_ms: int) -> Cursor:
    """Validate and decode a token.

    Raises:
        CursorError: malformed, bound to other parameters, expired, or issued in the future.
    """
    doc = _load(token)
    if doc.get("h") != binding:
        raise CursorError(
            "cannot use the continue token because the query parameters changed; "
            "start a new query without --continue"
        )
    key, window, issued = doc.get("k"), doc.get("w"), doc.get("i")
    if (
        not _is_key(key, key_length)
        or not (isinstance(window, list) and len(window) == 2)
        or not all(type(x) is int for x in window)
        or type(issued) is not int
    ):
        raise CursorError("the continue token is invalid; start a new query without --continue")
    age = now_ms - issued
    if age > TTL_MS:
        raise CursorError(
            f"the continue token expired after {format_duration(age // 1000 * 10**9)}; tokens "
            "are valid for 1h; start a new query without --continue"
        )
    if age < -_SKEW_MS:
        raise CursorError("the continue token was issued in the future; start a new query")
    assert isinstance(key, list) and isinstance(window, list)
    return Cursor(tuple(key), window[0], window[1])


def _load(token: str) -> dict[str, Any]:
    if not token or len(token) > _MAX_TOKEN:
        raise CursorError("the continue token is invalid; start a new query without --continue")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError(
            "the continue token is invalid; start a new query without --continue"
        ) from None
    if not isinstance(doc, dict) or doc.get("v") != 1:
        raise CursorError("the continue token is invalid; start a new query without --continue")
    return doc


def _is_key(key: object, length: int) -> bool:
    if not isinstance(key, list) or len(key) != length:
        return False
    return isinstance(key[0], int) and all(isinstance(v, str) for v in key[1:])


def key_of(row: Mapping[str, Any], length: int) -> tuple[str | int, ...]:
    """The sort key of a result row (columns ``k0..kN``; ``k0`` is epoch nanoseconds)."""
    values: list[str | int] = [int(row["k0"])]
    values += [str(row[f"k{i}"]) for i in range(1, length)]
    return tuple(values)
