"""The route (twin and Cython): route keys read from the bytes are exactly what the parsed record
routes by; EventList items are counted or listed the same on both; pack/unpack round trips."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.native import Implementation
from processor.records import jsonscan as twin_scan
from processor.records import route as twin
from processor.records.event import classify_record
from processor.records.route import DocumentKey, RouteKey, peek_route, peek_selector
from tests.unit.parity import impl, implementation  # noqa: F401
from tests.unit.test_native_jsonscan import BODIES, JSON, ROUTE


@pytest.fixture
def route(impl: Implementation) -> ModuleType:  # noqa: F811
    return impl.route


def native_route() -> ModuleType:
    return implementation("native").route


# -- split_routed -------------------------------------------------------------------------------
def event_list(items: list[bytes], after: bytes = b"") -> bytes:
    """An EventList document of raw ``items``."""
    return b'{"kind":"EventList","items":[' + b" , ".join(items) + b"] " + after + b"}"


def routed(route: ModuleType, doc: bytes, decisions: dict, tally: dict) -> Any:
    """``split_routed`` without ``documents``: its first four, ``counted`` into ``tally``."""
    got = route.split_routed(doc, BODIES, ROUTE, decisions)
    if got is None:
        return None
    tally.update(got[4])
    return got[:4]


ROUTED = [
    (
        b'{"stage":"ResponseComplete","verb":"get","objectRef":'
        b'{"apiGroup":"apps","resource":"deployments","name":"x"},"requestObject":{"a":["}"]}}',
        b"1\0ResponseComplete\0get\0apps\0deployments\0",
    ),
    (b'{"verb":null,"objectRef":null}', b"1\0\0"),
    (b'{"stage":"x","user":{"username":"system:kube-scheduler"}}', b"3\0x\0"),
    (b"{}", b"1\0\0"),
    (
        b'{ "verb" : "get" , "objectRef" : { "resource" : "pods" , "subresource" : "log" } }',
        b"1\0\0get\0\0pods\0log",
    ),
    ('{"verb":"créer","objectRef":{"apiGroup":"é"}}'.encode(), "1\0\0créer\0é\0\0".encode()),
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


def test_split_routed_keys_and_doubtful_items(route: ModuleType) -> None:
    doc = event_list([item for item, _ in ROUTED] + DOUBTFUL, after=b',"apiVersion":"v1"')
    got = routed(route, doc, {}, tally := {})
    assert got[:2] == twin_scan.split_document(doc, BODIES, ROUTE)[1:]
    assert tally == {}
    assert [doc[s:e] for s, e, _ in got[2]] == [item for item, _ in ROUTED] + DOUBTFUL
    assert [key for _, _, key in got[2]] == [key for _, key in ROUTED] + [None] * len(DOUBTFUL)


def test_split_routed_counts_decided_items(route: ModuleType) -> None:
    skip, read = ROUTED[0], ROUTED[2]
    doc = event_list([skip[0], read[0], skip[0], DOUBTFUL[0]])
    # an outcome (a tuple) is counted; anything else (what a wanted route gives) is listed
    decisions: dict[bytes, Any] = {skip[1]: ("apps/deployments", "stage"), read[1]: object()}
    rest = routed(route, doc, decisions, tally := {})[2]
    assert tally == {skip[1]: 2}
    assert [(doc[s:e], key) for s, e, key in rest] == [(read[0], read[1]), (DOUBTFUL[0], None)]
    assert routed(route, event_list([]), {}, {})[2] == []
    assert routed(route, b'{"items":{"a":1}}', {}, {})[2] is None  # not an array
    assert routed(route, b'{"kind":"x"}', {}, {})[2] is None


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
def test_split_routed_refuses_invalid_documents(route: ModuleType, doc: bytes) -> None:
    assert routed(route, doc, {}, {}) is None


def assert_routes_as_parsed(key: bytes, obj: Any) -> None:
    """A route key is only given when it is exactly what the parsed record routes by."""
    route, selector = peek_route(obj), peek_selector(obj)
    assert route is not None and selector is not None
    got = twin.unpack(key)
    assert (got.stage, got.index_key, got.verb) == (route[0], route[1], selector[0])
    if got.index_key is not None:
        assert got.subresource == selector[1]
    assert got.actor is None or got.actor == selector[2]


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
    native = native_route()
    doc = event_list([json.dumps(i, ensure_ascii=ascii_only).encode() for i in items])
    want = routed(twin, doc, {}, {})
    assert routed(native, doc, {}, {}) == want
    if want is None:
        assert twin_scan.scan_document(doc) is None
        return
    decisions = {key: ("/", "stage") for _, _, key in want[2] if key is not None and decide}
    assert [routed(native, doc, decisions, t := {}), t] == [
        routed(twin, doc, decisions, t := {}),
        t,
    ]
    for s, e, key in want[2]:
        if key is not None:
            assert_routes_as_parsed(key, orjson.loads(doc[s:e]))


@settings(max_examples=300, deadline=None)
@given(
    doc=st.text(alphabet='{}[]":,.-0123\\u tfnrl\xe9', max_size=30).map(
        lambda s: b'{"items":[' + s.encode() + b"]}"
    )
)
def test_split_routed_on_arbitrary_items(doc: bytes) -> None:
    native = native_route()
    want = routed(twin, doc, {}, {})
    assert routed(native, doc, {}, {}) == want
    assert (want is None) == (twin_scan.scan_document(doc) is None)


def test_split_routed_document_keys(route: ModuleType) -> None:
    audit = (
        b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"x","stage":"ResponseComplete",'
        b'"verb":"get","objectRef":{"resource":"pods"},"responseObject":{"kind":1}}'
    )
    assert routed(route, audit, {}, {})[3] == (
        b"Event\0audit.k8s.io/v1\0" + b"3" + b"\0" + b"1\0ResponseComplete\0get\0\0pods\0"
    )  # flags 0x30 + auditID 1 + stage 2; actor "unknown" (0x31)
    assert (
        routed(route, b'{"stage":null,"kind":null}', {}, {})[3] == b"\0\0" + b"2" + b"\0" + b"1\0\0"
    )
    assert routed(route, b"{}", {}, {})[3] == b"\0\0" + b"0" + b"\0" + b"1\0\0"
    for user, actor in [
        (b'{"username":"system:serviceaccount:ns:sa","groups":["g"]}', "serviceaccount"),
        (b'{"username":"system:node:n1","extra":{"a":["b"]}}', "system"),
        (b'{"uid":"1","username":"alice"}', "user"),
        (b'{"username":""}', "unknown"),
        (b'{"username":null}', "unknown"),
        (b"null", "unknown"),
        (b'{"username":"a","username":"b"}', None),  # twice: the full decode tells
        (b'{"userName":"alice"}', None),  # another case
        (b'{"username":"\\u0061"}', None),  # escaped
        (b'{"username":1}', None),
        (b'"alice"', None),
    ]:
        key = routed(route, b'{"verb":"get","user":' + user + b"}", {}, {})[3]
        assert route.unpack(route.unpack_document(key).route).actor == actor, user
        item = routed(route, event_list([b'{"verb":"get","user":' + user + b"}"]), {}, {})[2]
        assert route.unpack(item[0][2]).actor == actor, user
    for doc in [
        event_list([audit]),  # items: not an audit event field
        b'{"kind":1}',
        b'{"apiVersion":"v\\u0031"}',
        b'{"kind":"a","kind":"b"}',
        b'{"involvedObject":{},"kind":"Event","apiVersion":"v1"}',
    ]:
        assert routed(route, doc, {}, {})[3] is None


@pytest.mark.parametrize("size", [1, 7, 8, 9, 60, 150, 191, 192, 193, 400])
def test_split_routed_keys_of_every_size(route: ModuleType, size: int) -> None:
    # the native route interns keys up to a size (the same text, the same bytes object): keys
    # around and past that size, and the same key met again after others, read the same
    def doc(resource: str) -> bytes:
        return (
            b'{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete",'
            b'"verb":"get","objectRef":{"resource":"' + resource.encode() + b'"}}'
        )

    name = "r" * size
    want = b"Event\0audit.k8s.io/v1\0" + b"2" + b"\0" + b"1\0ResponseComplete\0get\0\0"
    first = routed(route, doc(name), {}, {})[3]
    assert first == want + name.encode() + b"\0"
    for other in range(3000):  # enough distinct keys to reuse every slot of the table
        assert routed(route, doc(f"{name[:-1]}{other}"), {}, {})[3] == (
            want + f"{name[:-1]}{other}".encode() + b"\0"
        )
    assert routed(route, doc(name), {}, {})[3] == first
    items = routed(route, event_list([doc(name)] * 3), {}, {})[2]
    assert [twin.unpack(key).index_key for _, _, key in items] == ["/" + name] * 3


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
        "user": st.none()
        | st.dictionaries(
            st.sampled_from(["username", "uid", "groups", "Username", "bogus"]),
            st.none() | st.sampled_from(["", "alice", "system:x", "system:serviceaccount:a:b", 3]),
            max_size=3,
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(value=DOCUMENT, ascii_only=st.booleans())
def test_split_routed_document_key_agrees_with_the_parsed_document(
    value: dict, ascii_only: bool
) -> None:
    doc = json.dumps(value, ensure_ascii=ascii_only).encode()
    want = routed(twin, doc, {}, {})
    assert routed(native_route(), doc, {}, {}) == want
    if want is None or want[3] is None:
        return
    entries: list[dict[bytes, Any]] = [
        {want[3]: ("/pods", "stage")},  # an outcome: not split
        {want[3]: None},  # not an audit event: split in full
        {want[3]: object()},  # wanted: the bodies' spans alone
        {b"other": ("", "x")},  # not decided yet: the bodies' spans alone
    ]
    for documents in entries:
        settled = twin.split_routed(doc, BODIES, ROUTE, {}, documents)
        assert native_route().split_routed(doc, BODIES, ROUTE, {}, documents) == settled
        entry = documents.get(want[3], "unknown")
        if isinstance(entry, tuple):
            assert settled == (None, None, None, want[3], {})
        elif entry is None:
            assert settled == (*want, {})
        else:
            assert settled == (want[0], None, None, want[3], {})
    obj = orjson.loads(doc)
    kind, api_version, flags, key = want[3].split(b"\0", 3)
    probe = {"kind": kind.decode(), "apiVersion": api_version.decode()}
    probe |= {k: None for k, bit in (("auditID", 1), ("stage", 2)) if flags[0] & bit}
    assert classify_record(probe) == classify_record(obj)
    assert_routes_as_parsed(key, obj)


KEYS = [
    (
        b"4\0ResponseComplete\0get\0apps\0deployments\0",
        RouteKey("ResponseComplete", "get", "apps/deployments", None, "user"),
    ),
    (b"0\0\0", RouteKey("", "", None, None, None)),
    (b"2\0\0get\0\0pods\0log", RouteKey("", "get", "/pods", "log", "serviceaccount")),
    ("1\0x\0créer\0é\0\0".encode(), RouteKey("x", "créer", "é/", None, "unknown")),
]


@pytest.mark.parametrize(("key", "want"), KEYS)
def test_unpack(route: ModuleType, key: bytes, want: RouteKey) -> None:
    assert route.unpack(key) == want
    parts = key.split(b"\0")
    ref = None if len(parts) == 3 else tuple(parts[3:])
    assert route.pack(parts[1], parts[2], ref, int(parts[0]) - 1) == key


def test_document_keys_pack_and_unpack(route: ModuleType) -> None:
    key = route.pack_document(b"Event", b"audit.k8s.io/v1", 0x33, b"1\0\0get")
    assert key == twin.pack_document(b"Event", b"audit.k8s.io/v1", 0x33, b"1\0\0get")
    assert route.unpack_document(key) == DocumentKey(
        "Event", "audit.k8s.io/v1", True, True, b"1\0\0get"
    )
    assert route.unpack_document(b"\0\0" + b"0" + b"\0\0").route == b"\0"
    for bad in (b"a\0b", b"a\0b\0cc\0d"):
        with pytest.raises(ValueError):
            route.unpack_document(bad)
    for bad in (b"1\0b\0c\0d", b"a\0b\0c", b"5\0\0", b"\0\0"):
        with pytest.raises(ValueError):
            route.unpack(bad)
