"""The typed decode (twin and Cython): an audit event decoded from its bytes gives exactly what
the split decoder (:func:`processor.records.lazy.decode_audit_split`: orjson on the small members,
:func:`decode_audit`, bodies pruned) gives, or None -- never a different value -- and None
wherever that decoder raises (the reference path dead-letters those).

Over the conformance cases, the real-policy corpus's need trees with generated records (both
mixes, several seeds, single records and EventList items), hand-written hostile variants and
hypothesis-mutated records.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.bench.corpus import generate
from processor.engine import Engine
from processor.errors import RecordError
from processor.native import Implementation
from processor.policy.compile import load_engine
from processor.records import jsonscan as twin_scan
from processor.records._json import floatify
from processor.records.audit import decode_audit
from processor.records.lazy import decode_audit_split
from processor.records.route import peek_route
from processor.translate import _ROUTE, _SPLIT
from tests.conftest import shared_files
from tests.unit.parity import BUNDLED, case_policies, impl, implementation  # noqa: F401

_NEEDS: dict[str, Any] = {
    "responseObject": {"metadata": {"uid": "whole", "name": "whole"}, "spec": "present"},
    "requestObject": {"spec": {"replicas": "whole", "template": "whole"}, "data": "whole"},
}


@pytest.fixture
def typed(impl: Implementation) -> ModuleType:  # noqa: F811
    return impl.typed


def reference(buf: bytes, start: int, end: int, needs: dict[str, Any]) -> dict[str, Any] | None:
    """What the split decoder gives for the event at ``buf[start:end]``; None when it raises or
    the scanner refuses the event."""
    split = twin_scan.split_object(buf, start, end, _SPLIT, _ROUTE)
    if split is None:
        return None
    text, spans, _route = split
    try:
        return decode_audit_split(buf, orjson.loads(text), spans, needs, twin_scan)
    except RecordError:
        return None


def check(typed: ModuleType, buf: bytes, needs: dict[str, Any], *, exact: bool = False) -> Any:
    """The typed decode of a whole document equals the split decoder's result, or is None
    (always None when that raises); with the scanner's body spans too. ``exact``: a record
    the typed decode must take (not None)."""
    if twin_scan.scan_document(buf) is None:
        return None  # the fast path only decodes what the scanner accepted
    expected = reference(buf, 0, len(buf), needs)
    got = typed.decode_audit_typed(buf, 0, len(buf), needs)
    split = twin_scan.split_document(buf, _SPLIT, _ROUTE)
    assert split is not None
    assert typed.decode_audit_typed(buf, 0, len(buf), needs, split[1]) == got
    if expected is None:
        assert got is None, buf
    elif got is not None or exact:
        assert got == expected, buf
        assert orjson.dumps(got) == orjson.dumps(expected)  # the same order of keys too
    return got


# -- hand-written records -----------------------------------------------------------------------
BASE: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "a-1",
    "stage": "ResponseComplete",
    "requestURI": "/apis/apps/v1/namespaces/ns/deployments/web",
    "verb": "create",
    "user": {
        "username": "alice@example.com",
        "uid": "u1",
        "groups": ["g1", None, "g2"],
        "extra": {"project": ["p1"], "k\u00e9": None, "organization": []},
    },
    "impersonatedUser": {"username": "bob"},
    "sourceIPs": ["10.0.0.1"],
    "userAgent": "kubectl/v1.30",
    "objectRef": {
        "resource": "deployments",
        "namespace": "ns",
        "name": "web",
        "apiGroup": "apps",
        "apiVersion": "v1",
        "subresource": "",
    },
    "responseStatus": {
        "metadata": {"resourceVersion": "7", "remainingItemCount": 3},
        "status": "Failure",
        "code": 409,
        "details": {"name": "web", "causes": [None, {"reason": "r", "field": "f"}]},
    },
    "requestObject": {
        "kind": "Deployment",
        "spec": {"replicas": 3, "template": {"a": [1, 2.5, -0, "x\n"]}, "paused": True},
        "data": {"k": "v", "n": -1.25},
    },
    "responseObject": {
        "metadata": {"name": "web", "uid": "abc", "labels": {"a": "b"}},
        "spec": {"big": [1, 2, 3]},
        "status": {},
    },
    "requestReceivedTimestamp": "2024-05-01T10:00:00.123456Z",
    "stageTimestamp": "2024-05-01T12:00:00.5+02:00",
    "annotations": {"authorization.k8s.io/decision": "allow", "n": None},
    "authenticationMetadata": {"x": 1, "y": [True, None]},
}


def record(**changes: Any) -> dict[str, Any]:
    """:data:`BASE` with ``changes`` (a value of ``...`` drops the key)."""
    out = dict(BASE)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def test_a_full_record_decodes_like_the_split_decoder(typed: ModuleType) -> None:
    buf = orjson.dumps(BASE)
    got = check(typed, buf, _NEEDS, exact=True)
    assert got["requestObject"] == {
        "spec": {"replicas": 3.0, "template": {"a": [1.0, 2.5, 0.0, "x\n"]}},
        "data": {"k": "v", "n": -1.25},
    }
    assert got["stageTimestamp"] == "2024-05-01T10:00:00.500000Z"
    assert got["user"]["groups"] == ["g1", "", "g2"]
    assert got["responseStatus"]["code"] == 409.0
    assert "subresource" not in got["objectRef"]
    assert got["responseObject"] == {"metadata": {"uid": "abc", "name": "web"}, "spec": None}


def test_bodies_no_policy_reads_are_left_out(typed: ModuleType) -> None:
    got = check(typed, orjson.dumps(BASE), {}, exact=True)
    assert "requestObject" not in got and "responseObject" not in got
    got = check(typed, orjson.dumps(BASE), {"requestObject": "whole"}, exact=True)
    assert got["requestObject"]["spec"]["paused"] is True and "responseObject" not in got


def test_needed_keys_of_every_size_and_not_ascii(typed: ModuleType) -> None:
    # the native decoder skips a body member whose key size no needed key has: keys of the same
    # size as a needed one, long keys (63 bytes and more share a size class) and non-ASCII keys
    # (sized in UTF-8) are still found
    long_a, long_b = "a" * 63, "b" * 80
    body = {
        "ab": 1,
        "cd": 2,
        long_a: 3,
        long_b: {"x": 1, "y\u00e9": 2, "z": 3},
        "\u00e9t\u00e9": "summer",
        "ete": "not needed",
        "": 0,
    }
    buf = orjson.dumps(record(requestObject=body))
    needs = {
        "requestObject": {
            "cd": "whole",
            long_b: {"y\u00e9": "whole"},
            "\u00e9t\u00e9": "whole",
            "": "present",
        }
    }
    got = check(typed, buf, needs, exact=True)
    assert got["requestObject"] == {
        "cd": 2.0,
        long_b: {"y\u00e9": 2.0},
        "\u00e9t\u00e9": "summer",
        "": None,
    }
    needs = {"requestObject": {long_a + "x": "whole", "b" * 90: "whole"}}  # sizes 64 and 90
    assert check(typed, buf, needs, exact=True)["requestObject"] == {}


def test_a_needs_function_gets_the_index_key(typed: ModuleType) -> None:
    asked: list[str] = []

    def needs(key: str) -> dict[str, Any]:
        asked.append(key)
        return _NEEDS

    buf = orjson.dumps(BASE)
    assert typed.decode_audit_typed(buf, 0, len(buf), needs) == reference(buf, 0, len(buf), _NEEDS)
    assert asked == ["apps/deployments"]
    no_ref = orjson.dumps(record(objectRef=...))
    got = typed.decode_audit_typed(no_ref, 0, len(no_ref), needs)
    assert asked == ["apps/deployments"] and "requestObject" not in got  # no policy reads it


def test_an_event_list_item_decodes_from_its_span(typed: ModuleType) -> None:
    items = [orjson.dumps(record(auditID=str(i))) for i in range(3)]
    buf = b'{"kind":"EventList","items":[' + b" , ".join(items) + b"]}"
    spans = twin_scan.array_items(
        buf, *dict((k, (s, e)) for k, s, e in twin_scan.scan_document(buf))["items"]
    )
    for (s, e), item in zip(spans, items, strict=True):
        assert buf[s:e] == item
        got = typed.decode_audit_typed(buf, s, e, _NEEDS)
        assert got == reference(buf, s, e, _NEEDS) and got is not None


SPACED = json.dumps(BASE, indent=2, ensure_ascii=True).encode()
ESCAPED = (
    orjson.dumps(record(verb="VERB", userAgent="AGENT"))
    .replace(b'"VERB"', b'"cr\\u0065ate"')
    .replace(b'"AGENT"', b'"a\\\\b\\"c\\/d\\t\\u00e9\\u4e2d"')
)
#: Records the typed decode must read exactly (not hand over).
EXACT = [
    SPACED,
    ESCAPED,
    json.dumps(BASE, ensure_ascii=True).encode(),  # \\u escapes of non-ASCII text
    orjson.dumps(record(user=None, objectRef=None, responseStatus=None, annotations=None)),
    orjson.dumps(record(level=None, stage=..., verb=None, requestObject=None, kind=None)),
    orjson.dumps(record(requestReceivedTimestamp="0001-01-01T00:00:00.000000Z")),
    orjson.dumps(record(stageTimestamp="2024-02-29T23:59:59Z")),
    orjson.dumps(record(stageTimestamp="2024-02-29T23:59:59.123456789-00:30")),
    orjson.dumps(record(responseStatus={"code": 200.0, "metadata": None})),
    orjson.dumps(record(responseStatus={"code": -0.0, "details": {"retryAfterSeconds": 5}})),
    orjson.dumps(record(requestObject="text", responseObject=[1, {"a": 2}])),
    orjson.dumps(record(annotations={}, sourceIPs=[], user={"groups": []})),
    b'{"verb":"get","verb":"create","objectRef":{"name":"a","name":"b"},"stage":"x"}',
    b'{"requestObject":{"spec":1},"requestObject":{"spec":{"replicas":2}},"verb":"a"}',
    b'{"requestObject":{"sp\\u0065c":{"replicas":2}}}',  # an escaped body key: decoded whole
    b'{"authenticationMetadata":{"a":{"b":[0.1,-7,123456789012345,-0,-0.0]}}}',
    '{"objectRef":{"name":"d\u00e9j\u00e0 \U0001f600"},"user":{"extra":{"\u00e9":[""]}}}'.encode(),
]


@pytest.mark.parametrize("buf", EXACT, ids=range(len(EXACT)))
def test_exact_records(typed: ModuleType, buf: bytes) -> None:
    assert twin_scan.scan_document(buf) is not None, buf
    assert check(typed, buf, _NEEDS, exact=True) is not None


#: Records the split decoder rejects (wrong types, bad timestamps, out of range numbers) or that
#: the typed decode hands over (keys in another case, unknown keys): None.
HANDED_OVER = [
    record(verb=1),
    record(kind=True),
    record(user="alice"),
    record(user={"username": 5}),
    record(user={"groups": "g"}),
    record(user={"groups": [1]}),
    record(user={"extra": {"a": "b"}}),
    record(user={"extra": []}),
    record(user={"Username": "x"}),
    record(user={"email": "x"}),
    record(Verb="get"),
    record(unknown=1),
    record(items=[]),
    record(objectRef="x"),
    record(objectRef={"name": 1}),
    record(objectRef={"Name": "x"}),
    record(sourceIPs="1.2.3.4"),
    record(userAgent=[]),
    record(responseStatus={"code": "200"}),
    record(responseStatus={"code": 2**31}),
    record(responseStatus={"code": 200.5}),
    record(responseStatus={"code": True}),
    record(responseStatus={"metadata": []}),
    record(responseStatus={"metadata": {"remainingItemCount": 1.5}}),
    record(responseStatus={"details": {"causes": {}}}),
    record(responseStatus={"details": {"causes": [1]}}),
    record(responseStatus={"details": {"retryAfterSeconds": 99999999999}}),
    record(responseStatus={"Code": 200}),
    record(requestReceivedTimestamp="yesterday"),
    record(requestReceivedTimestamp=5),
    record(requestReceivedTimestamp="2024-02-30T00:00:00.000000Z"),
    record(requestReceivedTimestamp="2023-02-29T00:00:00.000000Z"),
    record(requestReceivedTimestamp="2024-01-01T24:00:00.000000Z"),
    record(requestReceivedTimestamp="2024-01-01T00:60:00.000000Z"),
    record(requestReceivedTimestamp="2024-01-01T00:00:60.000000Z"),
    record(requestReceivedTimestamp="0000-01-01T00:00:00.000000Z"),
    record(requestReceivedTimestamp="2024-13-01T00:00:00.000000Z"),
    record(stageTimestamp="2024-01-01 00:00:00Z"),
    record(annotations={"a": 1}),
    record(annotations=[]),
    record(authenticationMetadata=[]),
    record(impersonatedUser="x"),
]


@pytest.mark.parametrize("value", HANDED_OVER, ids=range(len(HANDED_OVER)))
def test_unusual_records_are_handed_over(typed: ModuleType, value: dict[str, Any]) -> None:
    buf = orjson.dumps(value)
    assert check(typed, buf, _NEEDS) is None


def test_not_an_object_or_a_bad_span_is_none(typed: ModuleType) -> None:
    assert typed.decode_audit_typed(b"[1]", 0, 3, {}) is None
    assert typed.decode_audit_typed(b'"x"', 0, 3, {}) is None
    assert typed.decode_audit_typed(b"{}", 0, 0, {}) is None
    assert typed.decode_audit_typed(b"{}", 0, 9, {}) is None
    assert typed.decode_audit_typed(b"{}", 0, 2, {}) == decode_audit(b"{}")


# -- corpora ----------------------------------------------------------------------------------
def corpus_needs(engine: Engine, value: dict[str, Any]) -> dict[str, Any]:
    route = peek_route(value)
    return engine.audit_needs(route[1] if route is not None and route[1] is not None else "/")


@pytest.fixture(scope="module")
def bundled_engine() -> Engine:
    return load_engine(sorted(str(p) for p in BUNDLED.rglob("*.yaml")))


@pytest.mark.parametrize(("mix", "seed"), [("standard", 1), ("standard", 5), ("production", 2)])
def test_generated_records_with_the_bundled_needs(
    typed: ModuleType, bundled_engine: Engine, mix: str, seed: int
) -> None:
    decoded = 0
    for value in generate(600, seed=seed, mix=mix):
        if value.get("apiVersion") != "audit.k8s.io/v1":
            continue
        needs = corpus_needs(bundled_engine, value)
        decoded += check(typed, orjson.dumps(value), needs, exact=True) is not None
        decoded += (
            check(
                typed,
                orjson.dumps(value),
                {"requestObject": "whole", "responseObject": "whole"},
                exact=True,
            )
            is not None
        )
    assert decoded > 400


def test_generated_records_with_the_real_policy_needs(
    typed: ModuleType, real_policies_dir: Path
) -> None:
    engine = load_engine(sorted(str(p) for p in real_policies_dir.glob("*.yaml")))
    keys = set()
    for value in generate(1500, seed=11):
        if value.get("apiVersion") != "audit.k8s.io/v1":
            continue
        route = peek_route(value)
        if route is not None and route[1] in engine.audit_index:
            keys.add(route[1])
        check(typed, orjson.dumps(value), corpus_needs(engine, value), exact=True)
    assert len(keys) > 10, "the corpus must reach many policies' need trees"


CASES = shared_files("conformance", "cases", ids=lambda path: path.stem)


@pytest.mark.parametrize("case", CASES)
def test_conformance_case_inputs(typed: ModuleType, case: Path) -> None:
    doc, policies = case_policies(case)
    engine = Engine(policies, stages=None)
    for item in doc["spec"]["inputs"]:
        if item["type"] != "audit":
            continue
        value = item["audit"]
        buf = orjson.dumps(value, default=str)
        check(typed, buf, corpus_needs(engine, value) if type(value) is dict else {})


# -- hypothesis: mutated records ------------------------------------------------------------------
SCALAR = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=6)
MUTATION = st.one_of(
    SCALAR,
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.lists(SCALAR, max_size=3),
    st.dictionaries(st.sampled_from(["username", "name", "code", "Name", "x"]), SCALAR, max_size=3),
    st.sampled_from(
        ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.1234567+01:00", "0001-01-01T00:00:00Z"]
    ),
)
PATHS = [
    ("verb",),
    ("user",),
    ("user", "username"),
    ("user", "groups"),
    ("user", "extra"),
    ("objectRef",),
    ("objectRef", "name"),
    ("responseStatus",),
    ("responseStatus", "code"),
    ("responseStatus", "metadata"),
    ("responseStatus", "details"),
    ("requestReceivedTimestamp",),
    ("stageTimestamp",),
    ("annotations",),
    ("sourceIPs",),
    ("requestObject",),
    ("requestObject", "spec"),
    ("responseObject", "metadata"),
    ("authenticationMetadata",),
    ("kind",),
]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.lists(st.tuples(st.sampled_from(PATHS), MUTATION), min_size=1, max_size=3),
    ascii_only=st.booleans(),
)
def test_mutated_records(typed: ModuleType, changes: list, ascii_only: bool) -> None:
    value = json.loads(json.dumps(BASE))
    for path, new in changes:
        target = value
        for key in path[:-1]:
            if type(target.get(key)) is not dict:
                target[key] = {}
            target = target[key]
        target[path[-1]] = new
    check(typed, json.dumps(value, ensure_ascii=ascii_only).encode(), _NEEDS)


def test_the_native_unit_is_the_extension() -> None:
    native = implementation("native").typed
    assert native.__name__ == "processor._native.typed"


# -- skipping: strings with escapes, quotes and brackets across the 64-byte blocks ----------------
TRICKY = st.text(alphabet='\\"{}[]ab,:\u00e9\n', max_size=90)
NESTED = st.recursive(
    TRICKY | st.integers(-1000, 1000) | st.booleans() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
    max_leaves=12,
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=NESTED, wanted=NESTED, pad=st.integers(0, 70), ascii_only=st.booleans())
def test_skipping_finds_the_members_after_any_value(
    typed: ModuleType, before: Any, wanted: Any, pad: int, ascii_only: bool
) -> None:
    """A needed member after a value of any shape is found (the value skipped over), and any
    value decoded whole is orjson's."""
    body = {"p" * pad: 1, "a": before, "z": wanted}
    value = record(requestObject=body, authenticationMetadata={"m": before})
    buf = json.dumps(value, ensure_ascii=ascii_only).encode()
    got = check(typed, buf, {"requestObject": {"z": "whole"}}, exact=True)
    assert orjson.dumps(got["requestObject"]) == orjson.dumps(
        {"z": floatify(orjson.loads(json.dumps(wanted)))}
    )
    assert orjson.dumps(got["authenticationMetadata"]["m"]) == orjson.dumps(
        floatify(orjson.loads(json.dumps(before)))
    )
