"""The JSON scanner (twin and Cython) and floatify: same results on both, and a document the
scanner accepts is one orjson parses to the same values."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.native import Implementation
from processor.records import jsonscan as twin
from processor.records._json import floatify
from tests.unit.parity import impl, implementation  # noqa: F401

BODIES = frozenset({"requestObject", "responseObject", "items"})
ROUTE = frozenset({"kind", "stage", "objectRef"})


@pytest.fixture
def scan(impl: Implementation) -> ModuleType:  # noqa: F811
    return impl.jsonscan


def native_scan() -> ModuleType:
    return implementation("native").jsonscan


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
