"""Continue tokens: round trip, binding to the query parameters, expiry, tampering."""

from __future__ import annotations

import base64

import orjson
import pytest

from processor.query import cursor
from processor.query.errors import CursorError
from processor.query.service import QueryRequest
from processor.query.tables import ACTIVITIES

NOW_MS = 1_795_000_000_000
KEY = (1_795_000_000_123_000_000, "Organization", "org-1", "audit-42")


def _token(binding: str = "b", now_ms: int = NOW_MS) -> str:
    return cursor.encode(cursor.Cursor(KEY, 1, 2), binding, now_ms)


def test_round_trip() -> None:
    cur = cursor.decode(_token(), "b", 4, NOW_MS + 1000)
    assert cur == cursor.Cursor(KEY, 1, 2)


def test_bound_to_parameters() -> None:
    a = QueryRequest(ACTIVITIES, filter="spec.actor.name == 'a'", limit=10)
    b = QueryRequest(ACTIVITIES, filter="spec.actor.name == 'b'", limit=10)
    assert a.binding() != b.binding()
    assert (
        a.binding()
        == QueryRequest(
            ACTIVITIES, filter="spec.actor.name == 'a'", limit=10, continue_token="x"
        ).binding()
    )
    assert a.binding() != QueryRequest(ACTIVITIES, filter="spec.actor.name == 'a'").binding()
    with pytest.raises(CursorError, match="parameters changed"):
        cursor.decode(_token(a.binding()), b.binding(), 4, NOW_MS)


def test_expiry() -> None:
    token = _token()
    cursor.decode(token, "b", 4, NOW_MS + cursor.TTL_MS)
    with pytest.raises(CursorError, match="expired after 1h0m1s"):
        cursor.decode(token, "b", 4, NOW_MS + cursor.TTL_MS + 1000)
    with pytest.raises(CursorError, match="future"):
        cursor.decode(token, "b", 4, NOW_MS - 3600 * 1000)


def _forge(doc: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        _forge([1, 2]),
        _forge({"v": 2, "k": list(KEY), "w": [1, 2], "h": "b", "i": NOW_MS}),
        _forge({"v": 1, "k": list(KEY[:3]), "w": [1, 2], "h": "b", "i": NOW_MS}),
        _forge({"v": 1, "k": ["x", *KEY[1:]], "w": [1, 2], "h": "b", "i": NOW_MS}),
        _forge({"v": 1, "k": [KEY[0], 1, 2, 3], "w": [1, 2], "h": "b", "i": NOW_MS}),
        _forge({"v": 1, "k": list(KEY), "w": [1], "h": "b", "i": NOW_MS}),
        _forge({"v": 1, "k": list(KEY), "w": [1, 2], "h": "b", "i": "now"}),
        "A" * 10000,
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(CursorError, match="invalid"):
        cursor.decode(token, "b", 4, NOW_MS)
