"""Continue tokens: round trip, signature, rotation, binding, expiry, tampering, window re-check."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import replace

import orjson
import pytest

from processor.query import cursor
from processor.query.errors import CursorError
from processor.query.service import QueryRequest, build
from processor.query.tables import ACTIVITIES
from processor.query.timeparse import NS, parse_rfc3339
from processor.query.tokenkeys import TokenKeys

NOW_MS = 1_795_000_000_000
NOW_NS = NOW_MS * 10**6
KEY = (1_795_000_000_123_000_000, "Organization", "org-1", "audit-42")
OLD = TokenKeys((b"old-key-0123456789abcdef",))
NEW = TokenKeys((b"new-key-0123456789abcdef",))
ROTATED = TokenKeys((NEW.signing, OLD.signing))
DAY = 86400 * NS


def _token(binding: str = "b", now_ms: int = NOW_MS, keys: TokenKeys = OLD) -> str:
    return cursor.encode(cursor.Cursor(KEY, 1, 2), binding, now_ms, keys)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _payload_doc(token: str) -> dict[str, object]:
    payload = token.split(".")[0]
    doc: dict[str, object] = orjson.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return doc


def _sign(doc: object, key: bytes = OLD.signing) -> str:
    """A token for any content, signed like the service signs: HMAC over the payload text."""
    payload = _b64(orjson.dumps(doc))
    return payload + "." + _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def _doc(**changes: object) -> dict[str, object]:
    return {"v": 2, "k": list(KEY), "w": [1, 2], "h": "b", "i": NOW_MS, **changes}


def test_round_trip() -> None:
    cur = cursor.decode(_token(), "b", 4, NOW_MS + 1000, OLD)
    assert cur == cursor.Cursor(KEY, 1, 2)


def test_format_is_payload_dot_hmac_sha256() -> None:
    token = _token()
    payload, mac = token.split(".")
    assert _payload_doc(token) == _doc()
    expected = hmac.new(OLD.signing, payload.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(mac + "=") == expected
    assert _sign(_doc()) == token  # the test's signer matches: forgeries below are real MACs


def test_tampered_payload_rejected() -> None:
    payload, mac = _token().split(".")
    for changes in ({"k": [KEY[0] + 1, *KEY[1:]]}, {"h": "other"}, {"i": NOW_MS + 1}):
        forged = _b64(orjson.dumps(_doc(**changes))) + "." + mac
        with pytest.raises(CursorError, match="not valid: signature mismatch"):
            cursor.decode(forged, "b", 4, NOW_MS, OLD)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B") + "." + mac
    with pytest.raises(CursorError, match="signature mismatch"):
        cursor.decode(flipped, "b", 4, NOW_MS, OLD)


def test_tampered_window_rejected() -> None:
    mac = _token().split(".")[1]
    widened = _b64(orjson.dumps(_doc(w=[0, 2**62]))) + "." + mac
    with pytest.raises(CursorError, match="signature mismatch"):
        cursor.decode(widened, "b", 4, NOW_MS, OLD)


def test_altered_or_missing_mac_rejected() -> None:
    payload, mac = _token().split(".")
    for bad in (mac[:-1] + ("A" if mac[-1] != "A" else "B"), mac[:-2], "", mac + "A"):
        with pytest.raises(CursorError, match="signature mismatch"):
            cursor.decode(f"{payload}.{bad}", "b", 4, NOW_MS, OLD)


def test_wrong_key_rejected() -> None:
    with pytest.raises(CursorError, match="signature mismatch"):
        cursor.decode(_token(keys=NEW), "b", 4, NOW_MS, OLD)
    with pytest.raises(CursorError, match="signature mismatch"):
        cursor.decode(_sign(_doc(), b"guessed-key-0123456789"), "b", 4, NOW_MS, OLD)


def test_unsigned_v1_token_rejected() -> None:
    v1 = _b64(orjson.dumps(_doc(v=1)))  # the format before signatures
    with pytest.raises(CursorError, match="not valid: it is not signed"):
        cursor.decode(v1, "b", 4, NOW_MS, OLD)
    with pytest.raises(CursorError, match="unsupported version"):
        cursor.decode(_sign(_doc(v=1)), "b", 4, NOW_MS, OLD)


def test_rotation_new_key_signs_old_key_verifies() -> None:
    old_token = _token(keys=OLD)
    assert cursor.decode(old_token, "b", 4, NOW_MS, ROTATED) == cursor.Cursor(KEY, 1, 2)
    new_token = _token(keys=ROTATED)
    assert new_token.split(".")[1] == _token(keys=NEW).split(".")[1]  # signed with the new key
    cursor.decode(new_token, "b", 4, NOW_MS, NEW)
    with pytest.raises(CursorError, match="signature mismatch"):
        cursor.decode(new_token, "b", 4, NOW_MS, OLD)
    with pytest.raises(CursorError, match="signature mismatch"):  # old key dropped
        cursor.decode(old_token, "b", 4, NOW_MS, NEW)


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
        cursor.decode(_token(a.binding()), b.binding(), 4, NOW_MS, OLD)


def test_expiry() -> None:
    token = _token()
    cursor.decode(token, "b", 4, NOW_MS + cursor.TTL_MS, OLD)
    with pytest.raises(CursorError, match="expired after 1h0m1s"):
        cursor.decode(token, "b", 4, NOW_MS + cursor.TTL_MS + 1000, OLD)
    with pytest.raises(CursorError, match="future"):
        cursor.decode(token, "b", 4, NOW_MS - 3600 * 1000, OLD)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "bm90IGpzb24",
        _sign("not a dict"),
        _sign([1, 2]),
        "bm90IGpzb24." + _b64(hmac.new(OLD.signing, b"bm90IGpzb24", hashlib.sha256).digest()),
        _sign(_doc(v=3)),
        _sign(_doc(k=list(KEY[:3]))),
        _sign(_doc(k=["x", *KEY[1:]])),
        _sign(_doc(k=[KEY[0], 1, 2, 3])),
        _sign(_doc(w=[1])),
        _sign(_doc(w=[1, "2"])),
        _sign(_doc(i="now")),
        "A" * 10000,
        _token() + "\udcff",  # argv with undecodable bytes (surrogateescape)
    ],
)
def test_malformed(token: str) -> None:
    with pytest.raises(CursorError, match="continue token is not valid"):
        cursor.decode(token, "b", 4, NOW_MS, OLD)


# --- the window of a verified token is checked again (service.build) ---------------------------


def _continue(request: QueryRequest, start_ns: int, end_ns: int) -> QueryRequest:
    """``request`` continued with a correctly signed token holding this window."""
    token = cursor.encode(cursor.Cursor(KEY, start_ns, end_ns), request.binding(), NOW_MS, OLD)
    return replace(request, continue_token=token)


def test_valid_continuation_builds() -> None:
    request = QueryRequest(ACTIVITIES, start="now-7d", limit=10)
    first = build(request, NOW_NS - 3600 * NS, keys=OLD)  # first page an hour ago
    plan = build(_continue(request, first.start_ns, first.end_ns), NOW_NS, keys=OLD)
    assert (plan.start_ns, plan.end_ns) == (first.start_ns, first.end_ns)
    assert plan.select.params.values  # the window and the key are parameters


def test_signed_window_over_the_limit_rejected() -> None:
    request = QueryRequest(ACTIVITIES, start="now-7d", limit=10)
    with pytest.raises(CursorError, match=r"window of \d+d\S* exceeds the maximum of 30d"):
        build(_continue(request, 0, 2**62), NOW_NS, keys=OLD)
    with pytest.raises(CursorError, match="exceeds the maximum of 30d"):
        build(_continue(request, NOW_NS - 31 * DAY, NOW_NS), NOW_NS, keys=OLD)
    narrow = replace(request, max_window_ns=3 * DAY)  # --max-window 3d applies to tokens too
    with pytest.raises(CursorError, match="exceeds the maximum of 3d"):
        build(_continue(narrow, NOW_NS - 7 * DAY, NOW_NS), NOW_NS, keys=OLD)


@pytest.mark.parametrize(
    ("start", "end", "window"),
    [
        ("now-7d", "now", (NOW_NS - 8 * DAY, NOW_NS)),  # not the same anchor for start and end
        ("now-7d", "now", (NOW_NS - 6 * DAY, NOW_NS + DAY)),  # ends in the future
        ("now-7d", "now", (NOW_NS - 6 * DAY, NOW_NS + 600 * NS)),  # anchored after now
        ("2026-11-01T00:00:00Z", "now", (NOW_NS - 29 * DAY, NOW_NS)),  # not the absolute start
        ("now-7d", "now", (NOW_NS, NOW_NS)),  # empty
    ],
)
def test_signed_window_not_matching_the_request_rejected(
    start: str, end: str, window: tuple[int, int]
) -> None:
    request = QueryRequest(ACTIVITIES, start=start, end=end, limit=10)
    with pytest.raises(CursorError, match="continue token is not valid: its time window"):
        build(_continue(request, *window), NOW_NS, keys=OLD)


def test_absolute_start_continues() -> None:
    start = "2026-11-15T00:00:00Z"
    request = QueryRequest(ACTIVITIES, start=start, limit=10)
    first = build(request, NOW_NS - 60 * NS, keys=OLD)
    assert first.start_ns == parse_rfc3339(start)
    plan = build(_continue(request, first.start_ns, first.end_ns), NOW_NS, keys=OLD)
    assert plan.end_ns == NOW_NS - 60 * NS
