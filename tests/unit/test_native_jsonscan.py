"""The JSON scanner (twin and Cython), floatify and the hashes: same results on both, and a
document the scanner accepts is one orjson parses to the same values."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.activity import activity_name
from processor.native import extension
from processor.records import jsonscan as twin
from processor.records._json import floatify
from processor.records.audit import EVENT_KEYS, OBJECT_REF_KEYS, peek_route, peek_selector
from processor.records.event import classify_record
from processor.subjects import partition_of
from tests.unit.parity import native_flag

BODIES = frozenset({"requestObject", "responseObject", "items"})
ROUTE = frozenset({"kind", "stage", "objectRef"})


@pytest.fixture(params=["python", "native"])
def scan(request: pytest.FixtureRequest) -> ModuleType:
    if native_flag(request.param):
        module = extension("jsonscan")
        assert module is not None
        return module
    return twin


def native_scan() -> ModuleType:
    native_flag("native")
    module = extension("jsonscan")
    assert module is not None
    return module


def rebuild(buf: bytes, members: list) -> dict[str, Any] | None:
    """The object from its members (None when a key has escapes: the scanner does not decode it)."""
    if any(k is None for k, _, _ in members):
        return None
    return {k: orjson.loads(buf[s:e]) for k, s, e in members}


@pytest.mark.parametrize(
    "doc",
    [
        b'{"a":1,"b":[true,false,null],"c":{"d":"\\u00e9\\n"}}',
        b' \n{ "a" : "x" , "a" : 2 }\t',
        b"{}",
        '{"é":"ü€😀"}'.encode(),
        b'{"a":-0.5,"b":0,"c":123456789012345}',
    ],
)
def test_accepted_documents_match_orjson(scan: ModuleType, doc: bytes) -> None:
    members = scan.scan_document(doc)
    assert members is not None
    assert rebuild(doc, members) == orjson.loads(doc)


@pytest.mark.parametrize(
    "doc",
    [
        b"[1]",  # not an object
        b'{"a":1,}',
        b'{"a":01}',
        b'{"a":1e5}',  # exponent: doubtful
        b'{"a":1234567890123456}',  # more digits than a double keeps exactly
        b'{"a":"\\ud800"}',  # surrogate escape: doubtful
        b'{"a":"\xed\xa0\x80"}',  # UTF-8 surrogate
        b'{"a":"\xc0\xaf"}',  # overlong
        b'{"a":"\x01"}',
        b'{"a":tru}',
        b'{"a":1} x',
        b"\xef\xbb\xbf{}",
        b'{"a":' + b"[" * 300 + b"]" * 300 + b"}",
    ],
)
def test_doubtful_or_invalid_documents_are_refused(scan: ModuleType, doc: bytes) -> None:
    assert scan.scan_document(doc) is None
    assert scan.split_document(doc, BODIES, ROUTE) is None


def test_split_replaces_bodies_and_keeps_the_last_span(scan: ModuleType) -> None:
    doc = b'{"verb":"get", "requestObject" : {"a":[1]},"x":2,"requestObject":{"b":2}}'
    split = scan.split_document(doc, BODIES, ROUTE)
    assert split is not None
    text, spans, route = split
    assert orjson.loads(text) == {"verb": "get", "requestObject": {}, "x": 2}
    assert orjson.loads(route) == {"verb": None, "requestObject": None, "x": None}
    doc2 = b'{"stage":"x","objectRef":{"a":1},"verb":"get"}'
    assert orjson.loads(scan.split_document(doc2, BODIES, ROUTE)[2]) == {
        "stage": "x",
        "objectRef": {"a": 1},
        "verb": None,
    }
    s, e = spans["requestObject"]
    assert doc[s:e] == b'{"b":2}'
    assert scan.split_document(b'{"v\\u0065rb":1}', BODIES, ROUTE) is None  # escaped key
    many = orjson.dumps({f"k{i}": i for i in range(65)})
    assert scan.split_document(many, BODIES, ROUTE) is None
    assert scan.split_document(many[:-1] + b"}", BODIES, ROUTE) is None
    assert scan.split_document(orjson.dumps({f"k{i}": i for i in range(64)}), BODIES, ROUTE)


def test_nested_members_and_items(scan: ModuleType) -> None:
    doc = b'{"items":[{"a":1}, 2, "x"],"o":{"k":[1]}}'
    members = dict((k, (s, e)) for k, s, e in scan.scan_document(doc))
    items = scan.array_items(doc, *members["items"])
    assert [doc[s:e] for s, e in items] == [b'{"a":1}', b"2", b'"x"']
    assert scan.object_members(doc, *members["o"]) == [
        ("k", members["o"][0] + 5, members["o"][1] - 1)
    ]
    assert scan.object_members(doc, *items[1]) is None
    assert scan.array_items(doc, *members["o"]) is None


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=st.dictionaries(st.text(max_size=6), JSON, max_size=5), ascii_only=st.booleans())
def test_twin_and_native_agree_and_match_orjson(value: dict, ascii_only: bool) -> None:
    doc = json.dumps(value, ensure_ascii=ascii_only).encode()
    native = native_scan()
    got = native.scan_document(doc)
    assert got == twin.scan_document(doc)
    assert native.split_document(doc, BODIES, ROUTE) == twin.split_document(doc, BODIES, ROUTE)
    if got is not None and (rebuilt := rebuild(doc, got)) is not None:
        assert rebuilt == orjson.loads(doc)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.binary(max_size=40)
    | st.text(alphabet='{}[]":,.-+eE0123\\u tfnrl\xe9', max_size=30).map(str.encode)
)
def test_arbitrary_bytes(doc: bytes) -> None:
    native = native_scan()
    got = native.scan_document(doc)
    assert got == twin.scan_document(doc)
    if got is not None and (rebuilt := rebuild(doc, got)) is not None:
        assert rebuilt == orjson.loads(doc)


@settings(max_examples=200, deadline=None)
@given(value=JSON)
def test_floatify(value: Any) -> None:
    native = native_scan()
    doc = json.dumps(value).encode()
    try:
        parsed = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return
    assert orjson.dumps(native.floatify(orjson.loads(doc))) == orjson.dumps(floatify(parsed))


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.text(max_size=10), min_size=4, max_size=4), count=st.integers(1, 70))
def test_hashes(parts: list[str], count: int) -> None:
    native_flag("native")
    hashing = extension("hashing")
    assert hashing is not None
    assert hashing.activity_name(*parts) == activity_name(*parts)
    assert hashing.partition_of(*parts, count) == partition_of(*parts, count)


NEED = st.recursive(
    st.sampled_from(["whole", "present"]),
    lambda inner: st.dictionaries(
        st.sampled_from(["a", "b", "é", "metadata", ""]), inner, max_size=3
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    value=st.dictionaries(st.sampled_from(["a", "b", "é", "metadata", "", "x"]), JSON, max_size=5),
    need=NEED.filter(lambda n: n != "present"),
    ascii_only=st.booleans(),
)
def test_prune_twin_and_native_agree(value: dict, need: Any, ascii_only: bool) -> None:
    doc = json.dumps(value, ensure_ascii=ascii_only).encode()
    native = native_scan()
    if twin.scan_document(doc) is None:
        return  # prune only sees validated documents
    got = native.prune(doc, 0, len(doc), need, orjson.loads)
    assert orjson.dumps(got) == orjson.dumps(twin.prune(doc, 0, len(doc), need, orjson.loads))
    if need == "whole":
        assert got == floatify(orjson.loads(doc))


# -- split_routed -------------------------------------------------------------------------------
def event_list(items: list[bytes], after: bytes = b"") -> bytes:
    """An EventList document of raw ``items``."""
    return b'{"kind":"EventList","items":[' + b" , ".join(items) + b"] " + after + b"}"


def routed(scan: ModuleType, doc: bytes, decisions: dict, tally: dict) -> Any:
    return scan.split_routed(doc, BODIES, ROUTE, EVENT_KEYS, OBJECT_REF_KEYS, decisions, tally)


ROUTED = [
    (
        b'{"stage":"ResponseComplete","verb":"get","objectRef":'
        b'{"apiGroup":"apps","resource":"deployments","name":"x"},"requestObject":{"a":["}"]}}',
        b"ResponseComplete\0get\0apps\0deployments\0",
    ),
    (b'{"verb":null,"objectRef":null}', b"\0"),
    (b'{"stage":"x"}', b"x\0"),
    (b"{}", b"\0"),
    (
        b'{ "verb" : "get" , "objectRef" : { "resource" : "pods" , "subresource" : "log" } }',
        b"\0get\0\0pods\0log",
    ),
    ('{"verb":"créer","objectRef":{"apiGroup":"é"}}'.encode(), "\0créer\0é\0\0".encode()),
]
DOUBTFUL = [
    b'{"foo":1}',  # not an audit event field
    b'{"v\\u0065rb":"get"}',  # escaped key
    b'{"verb":"a","verb":"b"}',  # a route member twice
    b'{"verb":1}',  # not a string
    b'{"verb":"g\\u0065t"}',  # escaped value
    b'{"objectRef":"x"}',
    b'{"objectRef":{"zzz":1}}',
    b'{"objectRef":{"resource":"a","resource":"b"}}',
    b'{"objectRef":{"apiGroup":true}}',
    b"5",
    b"[]",
]


def test_split_routed_keys_and_doubtful_items(scan: ModuleType) -> None:
    doc = event_list([item for item, _ in ROUTED] + DOUBTFUL, after=b',"apiVersion":"v1"')
    got = routed(scan, doc, {}, tally := {})
    assert got[:3] == scan.split_document(doc, BODIES, ROUTE)
    assert tally == {}
    assert [doc[s:e] for s, e, _ in got[3]] == [item for item, _ in ROUTED] + DOUBTFUL
    assert [key for _, _, key in got[3]] == [key for _, key in ROUTED] + [None] * len(DOUBTFUL)


def test_split_routed_counts_decided_items(scan: ModuleType) -> None:
    skip, read = ROUTED[0], ROUTED[2]
    doc = event_list([skip[0], read[0], skip[0], DOUBTFUL[0]])
    decisions: dict[bytes, Any] = {skip[1]: ("apps/deployments", "stage"), read[1]: None}
    rest = routed(scan, doc, decisions, tally := {})[3]
    assert tally == {skip[1]: 2}
    assert [(doc[s:e], key) for s, e, key in rest] == [(read[0], read[1]), (DOUBTFUL[0], None)]
    assert routed(scan, event_list([]), {}, {})[3] == []
    assert routed(scan, b'{"items":{"a":1}}', {}, {})[3] is None  # not an array
    assert routed(scan, b'{"kind":"x"}', {}, {})[3] is None


@pytest.mark.parametrize(
    "doc",
    [
        event_list([b'{"verb":"get"}', b'{"verb":"get",}']),  # an invalid item
        event_list([b'{"verb":"get"}', b"01"]),
        event_list([b'{"verb":"get"}']) + b"x",
        event_list([b'{"verb":"get"}'], after=b',"items":[]'),  # items twice
        b'{"items":[{"verb":"get"}' + b"]" * 0 + b"}",
        b'{"items":[' + b"[" * 200 + b"]" * 200 + b"]}",  # nested too deep
    ],
)
def test_split_routed_refuses_invalid_documents(scan: ModuleType, doc: bytes) -> None:
    assert routed(scan, doc, {}, {}) is None


def assert_routes_as_parsed(key: bytes, obj: Any) -> None:
    """A route key is only given when it is exactly what the parsed record routes by."""
    route, selector = peek_route(obj), peek_selector(obj)
    assert route is not None and selector is not None
    parts = key.decode().split("\0")
    assert (parts[0], parts[1]) == (route[0], selector[0])
    if len(parts) == 5:
        assert (f"{parts[2]}/{parts[3]}", parts[4] or None) == (route[1], selector[1])
    else:
        assert len(parts) == 2 and route[1] is None


ROUTE_VALUE = st.none() | st.sampled_from(["", "get", "create", "ResponseComplete", "é", "a\\b"])
AUDIT_ITEM = st.dictionaries(
    st.sampled_from(["stage", "verb", "objectRef", "auditID", "requestObject", "bogus"]),
    ROUTE_VALUE
    | JSON
    | st.dictionaries(
        st.sampled_from(["apiGroup", "resource", "subresource", "name", "nope"]),
        ROUTE_VALUE | JSON,
        max_size=4,
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(AUDIT_ITEM, max_size=6), ascii_only=st.booleans(), decide=st.booleans())
def test_split_routed_twin_and_native_agree_with_the_parsed_route(
    items: list[dict], ascii_only: bool, decide: bool
) -> None:
    native = native_scan()
    doc = event_list([json.dumps(i, ensure_ascii=ascii_only).encode() for i in items])
    want = routed(twin, doc, {}, {})
    assert routed(native, doc, {}, {}) == want
    if want is None:
        assert twin.scan_document(doc) is None
        return
    decisions = {key: "known" for _, _, key in want[3] if key is not None and decide}
    assert [routed(native, doc, decisions, t := {}), t] == [
        routed(twin, doc, decisions, t := {}),
        t,
    ]
    for s, e, key in want[3]:
        if key is not None:
            assert_routes_as_parsed(key, orjson.loads(doc[s:e]))


@settings(max_examples=300, deadline=None)
@given(
    doc=st.text(alphabet='{}[]":,.-0123\\u tfnrl\xe9', max_size=30).map(
        lambda s: b'{"items":[' + s.encode() + b"]}"
    )
)
def test_split_routed_on_arbitrary_items(doc: bytes) -> None:
    native = native_scan()
    want = routed(twin, doc, {}, {})
    assert routed(native, doc, {}, {}) == want
    assert (want is None) == (twin.scan_document(doc) is None)


def test_split_routed_document_keys(scan: ModuleType) -> None:
    audit = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x","stage":"ResponseComplete",'
        b'"verb":"get","objectRef":{"resource":"pods"},"responseObject":{"kind":1}}'
    )
    assert routed(scan, audit, {}, {})[4] == (
        b"Event\0audit.k8s.io/v1\0" + b"3" + b"\0ResponseComplete\0get\0\0pods\0"
    )
    assert routed(scan, b'{"stage":null,"kind":null}', {}, {})[4] == b"\0\0" + b"2" + b"\0\0"
    assert routed(scan, b"{}", {}, {})[4] == b"\0\0" + b"0" + b"\0\0"
    for doc in [
        event_list([audit]),  # items: not an audit event field
        b'{"kind":1}',
        b'{"apiVersion":"v\\u0031"}',
        b'{"kind":"a","kind":"b"}',
        b'{"involvedObject":{},"kind":"Event","apiVersion":"v1"}',
    ]:
        assert routed(scan, doc, {}, {})[4] is None


DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.none() | st.sampled_from(["Event", "EventList", "", "x"]),
        "apiVersion": st.none() | st.sampled_from(["audit.k8s.io/v1", "v1", "", 3]),
        "auditID": st.none() | st.just("id"),
        "stage": ROUTE_VALUE,
        "verb": ROUTE_VALUE,
        "objectRef": st.none()
        | st.dictionaries(
            st.sampled_from(["apiGroup", "resource", "subresource", "kind", "apiVersion"]),
            ROUTE_VALUE,
            max_size=4,
        ),
        "regarding": st.just({}),
    },
)


@settings(max_examples=300, deadline=None)
@given(value=DOCUMENT, ascii_only=st.booleans())
def test_split_routed_document_key_agrees_with_the_parsed_document(
    value: dict, ascii_only: bool
) -> None:
    doc = json.dumps(value, ensure_ascii=ascii_only).encode()
    want = routed(twin, doc, {}, {})
    assert routed(native_scan(), doc, {}, {}) == want
    if want is None or want[4] is None:
        return
    obj = orjson.loads(doc)
    kind, api_version, flags, key = want[4].split(b"\0", 3)
    probe = {"kind": kind.decode(), "apiVersion": api_version.decode()}
    probe |= {k: None for k, bit in (("auditID", 1), ("stage", 2)) if flags[0] & bit}
    assert classify_record(probe) == classify_record(obj)
    assert_routes_as_parsed(key, obj)
