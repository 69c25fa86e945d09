"""The ingest's list splitter: the native pass equals its twin (``processor/ingest/split.py``), and
the fast path it feeds equals the exact path (orjson) in partitions, records and dead letters."""

from __future__ import annotations

import os
import random
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.bench import hostile
from processor.ingest import split as twin
from processor.ingest.batching import dead_letter_messages, partition_messages
from processor.ingest.body import BodyError, Parsed, parse_exact, parse_split
from processor.native import ExtensionMissingError, require
from processor.subjects import audit_partition, event_partition

PARTITIONS = 8
LIMIT = 1 << 30
HEAD = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
EVENT_HEAD = b'{"kind":"EventList","apiVersion":"v1","items":['
KEY_PATHS = [
    ("objectRef",), ("objectRef", "name"), ("regarding",), ("involvedObject",),
    ("regarding", "kind"), ("involvedObject", "namespace"),
]  # fmt: skip


@pytest.fixture(scope="module")
def native() -> ModuleType:
    """The native splitter; the twin itself with ``PROCESSOR_NO_EXTENSIONS=1`` (the tests then
    check the twin against the exact path)."""
    if os.environ.get("PROCESSOR_NO_EXTENSIONS") == "1":
        return twin
    try:
        return require("ingestsplit")
    except ExtensionMissingError:
        if os.environ.get("PROCESSOR_REQUIRE_EXTENSIONS") == "1":
            raise
        pytest.skip("native extensions not built (pip install -e . builds them)")


# -- bodies --------------------------------------------------------------------------------------
def _escape_first(text: bytes, needle: bytes) -> bytes:
    """``needle``'s first letter written as a \\u escape (same value, escaped text)."""
    at = text.find(needle)
    if at < 0:
        return text
    return text[:at] + b"\\u%04x" % needle[0] + text[at + 1 :]


def tweaked(rng: random.Random, record: Any) -> bytes:
    """One list item's text: a record (or any value) with a random twist the fast path must
    treat as the exact path does."""
    text = orjson.dumps(record)
    if type(record) is not dict:
        return text
    twist = rng.randrange(14)
    if twist == 0:  # indented: whitespace inside the item
        return orjson.dumps(record, option=orjson.OPT_INDENT_2)
    if twist == 1:  # an escaped key field value
        return _escape_value(text)
    if twist == 2:  # an escaped key in the item (maybe the key object's)
        return _escape_first(text, rng.choice([b"objectRef", b"regarding", b"verb", b"involved"]))
    if twist == 3:  # the key object repeated: the last one wins
        key = rng.choice([b"objectRef", b"regarding", b"involvedObject"])
        value = rng.choice([b'{"name":"x","namespace":"y"}', b"null", b"{}", b"7", b'"s"'])
        return text[:-1] + b',"' + key + b'":' + value + b"}"
    if twist == 4:  # a field repeated inside the key object
        for key in (b'"objectRef":{', b'"regarding":{', b'"involvedObject":{'):
            at = text.find(key)
            if at >= 0:
                cut = at + len(key)
                return text[:cut] + b'"name":"first",' + text[cut:]
        return text
    if twist == 5:  # a wrong type where the key is read
        path = rng.choice(KEY_PATHS)
        value = rng.choice([*hostile.WRONG, 0, 0.0, "", [], {}, {"name": "n"}])
        rec = orjson.loads(text)
        target = rec
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[path[-1]] = value
        return orjson.dumps(rec)
    if twist == 6:  # doubtful numbers somewhere
        return text[:-1] + rng.choice([b',"n":1e5}', b',"n":12345678901234567890}', b',"n":-0.5}'])
    if twist == 7:  # non-ASCII and escapes in values
        return text[:-1] + b',"note":"caf\xc3\xa9 \\u0026 \\"q\\" \\/"}'
    return text


def _escape_value(text: bytes) -> bytes:
    at = text.find(b'"name":"')
    if at < 0 or text[at + 8 : at + 9] == b'"':
        return text
    cut = at + 8
    return text[:cut] + b"\\u%04x" % text[cut] + text[cut + 1 :]


def body_of(rng: random.Random, audit: bool, n: int) -> bytes:
    pool = hostile.AUDITS if audit else hostile.EVENTS
    values: list[Any] = [*pool, *hostile.ITEM_VALUES]
    items = [tweaked(rng, rng.choice(values)) for _ in range(n)]
    sep = rng.choice([b", ", b"\n,\t", b" ,"]) if rng.random() < 0.2 else b","
    head = (
        HEAD if audit else rng.choice([EVENT_HEAD, b'{"kind":"List","apiVersion":"v1","items":['])
    )
    body = head + sep.join(items) + b"]}"
    twist = rng.randrange(12)
    if twist == 0:  # pretty: whitespace everywhere
        body = (
            orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) if _valid(body) else body
        )
    elif twist == 1:  # more top-level members, before and after the items
        body = b'{"metadata":{},' + body[1:-1] + b',"extra":[1,{"a":null}]}'
    elif twist == 2:  # a repeated top-level key
        body = body[:-1] + rng.choice([b',"kind":"EventList"}', b',"items":[]}', b',"items":3}'])
    elif twist == 3:  # an escaped top-level key
        body = body.replace(b'"kind"', b'"\\u006bind"', 1)
    elif twist == 4:  # truncated or corrupted
        cut = rng.randrange(len(body))
        body = (
            body[:cut]
            if rng.random() < 0.5
            else body[:cut] + bytes([rng.randrange(256)]) + body[cut + 1 :]
        )
    elif twist == 5:  # a single record rather than a list
        body = tweaked(rng, rng.choice(pool))
    elif twist == 6:  # the wrong kind of list
        body = (
            body.replace(b"audit.k8s.io/v1", b"v1", 1)
            if audit
            else body.replace(b'"v1"', b'"audit.k8s.io/v1"', 1)
        )
    return body


def _valid(body: bytes) -> bool:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return True


# -- helpers ---------------------------------------------------------------------------------------
def outcome(parsed: Parsed) -> tuple[list[Any], list[Any]]:
    """Records as (partition, value), rejections whole (the dead letter's bytes included)."""
    records = [(r.partition, orjson.loads(r.data)) for r in parsed.records]
    rejected = [(r.index, r.reason, r.message, r.payload) for r in parsed.rejected]
    return records, rejected


def exact(source: Any, body: bytes, limit: int = LIMIT) -> Any:
    try:
        return parse_exact(source, body, PARTITIONS, limit)
    except BodyError as exc:
        return exc


def check_body(native: ModuleType, body: bytes, audit: bool, limit: int = LIMIT) -> Parsed | None:
    """Native and twin agree; where they accept, orjson does, and the fast path equals the exact
    path. The fast path's Parsed, or None."""
    source = "audit" if audit else "event"
    found = native.split_list(body, audit, PARTITIONS)
    assert found == twin.split_list(body, audit, PARTITIONS)
    if found is None:
        return None
    expected = exact(source, body, limit)  # the splitter accepted: orjson must too
    assert not (
        isinstance(expected, BodyError)
        and expected.reason == "malformed"
        and "invalid JSON" in str(expected)
    )
    fast = parse_split(source, body, found, PARTITIONS, limit)
    if fast is None:
        return None
    assert isinstance(expected, Parsed), expected
    assert outcome(fast) == outcome(expected)
    assert [m.data for m in dead_letter_messages(fast, body, 1 << 20)] == [
        m.data for m in dead_letter_messages(expected, body, 1 << 20)
    ]
    return fast


# -- tests -----------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.booleans(), st.integers(0, 12))
def test_generated_bodies(native: ModuleType, seed: int, audit: bool, n: int) -> None:
    check_body(native, body_of(random.Random(seed), audit, n), audit)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32))
def test_hostile_messages(native: ModuleType, seed: int) -> None:
    """Every message of the hostile vocabulary (as a body of either endpoint)."""
    rng = random.Random(seed)
    spec = hostile.random_spec(rng, hostile=0.8)
    if spec[0] in ("deep", "deepfield", "hugeinput", "hugename"):
        spec = ("list", [("item", rng.choice(hostile.ITEM_VALUES)), ("wanted", "update")])
    _, payload, _ = hostile.Builder("t-").message(spec)
    for audit in (True, False):
        check_body(native, payload, audit)


def test_deep_nesting_is_doubtful(native: ModuleType) -> None:
    # the body is depth 0, the items array 1, an item 2: arrays from depth 3 to 199 pass
    ok = HEAD + b'{"a":' + b"[" * 197 + b"]" * 197 + b"}]}"
    deep = HEAD + b'{"a":' + b"[" * 198 + b"]" * 198 + b"}]}"
    assert native.split_list(ok, True, 8) == twin.split_list(ok, True, 8)
    assert native.split_list(ok, True, 8) is not None
    assert native.split_list(deep, True, 8) is None
    assert twin.split_list(deep, True, 8) is None
    data = hostile.Builder("d-").message(("deepfield", 0))[1]
    assert native.split_list(HEAD + data + b"]}", True, 8) is None


def test_every_corpus_record_is_decided_natively(native: ModuleType) -> None:
    """The corpus (compact, as kube-apiserver sends) never needs the exact path, and the
    records are the items' bytes, in order, each in the workers' partition."""
    from processor.bench.corpus import generate

    records = list(generate(600, seed=5))
    for audit, route in ((True, audit_partition), (False, event_partition)):
        chosen = [r for r in records if (r.get("apiVersion") == "audit.k8s.io/v1") == audit]
        texts = [orjson.dumps(r) for r in chosen]
        body = (HEAD if audit else EVENT_HEAD) + b",".join(texts) + b"]}"
        found = native.split_list(body, audit, PARTITIONS)
        assert found is not None
        assert [c for _, _, c in found[1]] == [route(r, PARTITIONS) for r in chosen]
        fast = check_body(native, body, audit)
        assert fast is not None
        assert [r.data for r in fast.records] == texts
        expected = parse_exact("audit" if audit else "event", body, PARTITIONS, LIMIT)
        if audit:  # the same messages, ids included, as the exact path makes
            ours = partition_messages(fast, 100, 1 << 20)
            theirs = partition_messages(expected, 100, 1 << 20)
            assert [(m.subject, m.data, m.msg_id) for m in ours] == [
                (m.subject, m.data, m.msg_id) for m in theirs
            ]


def test_too_large_items_are_dead_lettered_alike(native: ModuleType) -> None:
    small = orjson.dumps(hostile.AUDITS[0])
    big = orjson.dumps({**hostile.AUDITS[1], "pad": "x" * 5000})
    body = HEAD + b",".join([small, big, b"7", small]) + b"]}"
    fast = check_body(native, body, True, limit=len(small) + 10)
    assert fast is not None
    assert [(r.index, r.reason) for r in fast.rejected] == [(1, "too_large"), (2, "not_object")]
    assert fast.rejected[0].payload == big


@pytest.mark.parametrize("count", [1, 2, 7, 64])
def test_partition_counts(native: ModuleType, count: int) -> None:
    chosen = hostile.AUDITS[:10]
    body = HEAD + b",".join(orjson.dumps(r) for r in chosen) + b"]}"
    found = native.split_list(body, True, count)
    assert found == twin.split_list(body, True, count)
    assert [c for _, _, c in found[1]] == [audit_partition(r, count) for r in chosen]


def test_partition_count_below_one(native: ModuleType) -> None:
    for split in (native.split_list, twin.split_list):
        with pytest.raises(ValueError, match="must be >= 1"):
            split(HEAD + b"]}", True, 0)


def test_many_top_level_members_are_doubtful(native: ModuleType) -> None:
    def body(k: int) -> bytes:
        extra = b"".join(b'"m%d":%d,' % (x, x) for x in range(k - 3))
        return b"{" + extra + HEAD[1:] + b"]}"

    assert native.split_list(body(64), True, 8) == twin.split_list(body(64), True, 8)
    assert native.split_list(body(64), True, 8) is not None
    assert native.split_list(body(65), True, 8) is None
    assert twin.split_list(body(65), True, 8) is None
