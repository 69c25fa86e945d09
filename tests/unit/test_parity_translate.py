"""Differential tests: the fast path, on the twins and on the Cython extensions, gives exactly the
reference path's results (the specification: orjson, the full decode, every rule).

Over the conformance cases, the real-policy corpus with a generated record corpus (single records
and EventLists), and hypothesis-generated records: valid, mutated (wrong types, keys in another
case, escaped and duplicate keys, unknown keys, odd routing values) and malformed bytes. Activities,
dead letters (minus their wall-clock timestamp) and counters must be equal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor import translate as translate_module
from processor.bench.corpus import generate
from processor.engine import Engine
from processor.native import twin
from processor.policy import parse_policy_text
from processor.policy.compile import load_engine
from processor.records import decode_audit
from processor.records.route import peek_route, peek_selector
from processor.translate import Output, Translator
from tests.conftest import shared_files
from tests.unit.parity import BUNDLED, IMPLEMENTATIONS, case_policies, translator_on


def outcome(translator: Translator, payloads: list[bytes], hint: Any = None) -> dict[str, Any]:
    out = Output()
    for payload in payloads:
        translator.translate(payload, out, hint)
    letters = [{k: v for k, v in d.items() if k != "timestamp"} for d in out.dead_letters]
    return {
        "activities": [a.activity() for a in out.activities],
        "dead_letters": orjson.loads(orjson.dumps(letters)),
        "counts": (out.records, out.no_match, out.skipped, out.errors),
        "metrics": (out.policies, out.skip_reasons, out.received),
    }


def pair(engine_for: Any, impl: str) -> tuple[Translator, Translator]:
    """The reference path (on the twins) and the fast path on ``impl`` (``python``/``native``)."""
    return (
        translator_on("reference", engine_for, max_record_bytes=64 * 1024),
        translator_on(impl, engine_for, max_record_bytes=64 * 1024),
    )


def assert_same(reference: Translator, fast: Translator, payloads: list[bytes], hint=None) -> None:
    assert outcome(fast, payloads, hint) == outcome(reference, payloads, hint)


# --- the real-policy corpus with the generated corpus ------------------------------------------


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def real(request: pytest.FixtureRequest, real_policies_dir: Path) -> tuple[Translator, Translator]:
    paths = sorted(str(p) for p in real_policies_dir.glob("*.yaml"))
    return pair(lambda impl: load_engine(paths, impl=impl), request.param)


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def bundled(request: pytest.FixtureRequest) -> tuple[Translator, Translator]:
    """The project's own policies (``policies/``): needs nothing outside the repository."""
    paths = sorted(str(p) for p in BUNDLED.rglob("*.yaml"))
    return pair(lambda impl: load_engine(paths, impl=impl), request.param)


def policy_paths(policies: str, request: pytest.FixtureRequest) -> list[str]:
    """The files of the ``real`` (only this needs ../shared) or the ``bundled`` policies."""
    if policies == "real":
        real_policies_dir: Path = request.getfixturevalue("real_policies_dir")
        return sorted(str(p) for p in real_policies_dir.glob("*.yaml"))
    return sorted(str(p) for p in BUNDLED.rglob("*.yaml"))


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    return list(generate(1500, seed=7))


def test_real_policies_on_the_corpus(real: tuple[Translator, Translator], corpus: list) -> None:
    reference, fast = real
    lines = [orjson.dumps(r) for r in corpus]
    result = outcome(reference, lines)
    assert result["activities"], "the corpus must produce activities"
    assert outcome(fast, lines) == result
    assert outcome(fast, lines, "audit") == outcome(reference, lines, "audit")  # the worker's hint


def test_single_audit_events_are_decided_from_their_route_key(
    real: tuple[Translator, Translator], corpus: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the audit stream, a record no policy reads is counted without being parsed."""
    _reference, fast = real
    read: list[object] = []
    typed = fast._typed

    def counting(buf: bytes, start: int, end: int, *args: Any) -> Any:
        read.append(buf[start:end])
        return typed(buf, start, end, *args)

    monkeypatch.setattr(fast, "_typed", counting)
    out, wanted = Output(), 0
    engine = fast.engine
    for record in corpus:
        if record.get("apiVersion") != "audit.k8s.io/v1":
            continue
        fast.translate(orjson.dumps(record), out, "audit")
        route, selector = peek_route(record), peek_selector(record)
        assert route is not None and selector is not None
        if not engine.audit_skip_reason(*route):
            assert route[1] is not None
            wanted += not engine.audit_selects_nothing(route[1], *selector)
    assert out.skipped > 100 and out.records - out.skipped - wanted > 100
    assert len(read) == wanted


def test_real_policies_on_event_lists(real: tuple[Translator, Translator], corpus: list) -> None:
    reference, fast = real
    audits = [r for r in corpus if r.get("apiVersion") == "audit.k8s.io/v1"]
    lists = [
        orjson.dumps(
            {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": audits[i : i + 50]}
        )
        for i in range(0, len(audits), 50)
    ]
    assert_same(reference, fast, lists)


@pytest.mark.parametrize("policies", ["real", "bundled"])
def test_records_no_rule_can_match_are_no_match_when_every_rule_runs(
    policies: str, corpus: list, request: pytest.FixtureRequest
) -> None:
    """The early no-match (on verb, subresource and actor type, before decoding) is what every
    rule gives."""
    engine = load_engine(policy_paths(policies, request), impl=twin())
    early = by_actor = 0
    for record in corpus:
        route = peek_route(record)
        if route is None or route[1] is None or engine.audit_skip_reason(*route):
            continue
        selector = peek_selector(record)
        assert selector is not None
        if not engine.audit_selects_nothing(route[1], *selector):
            continue
        early += 1
        by_actor += not engine.audit_selects_nothing(route[1], *selector[:2])
        result = engine.translate_audit(decode_audit(record))  # no dispatch: every rule runs
        assert result.activity is None and result.failures == [], record["auditID"]
    assert early > 100, "the corpus must exercise the early no-match"
    if policies == "bundled":  # most bundled audit rules guard on actorRef.type == 'user'
        assert by_actor > 100, "the corpus must exercise the actor guard"


# --- conformance cases ----------------------------------------------------------------------------

CASES = shared_files("conformance", "cases", ids=lambda path: path.stem)


@pytest.mark.parametrize("impl_name", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", CASES)
def test_conformance_case_inputs(case: Path, impl_name: str) -> None:
    doc, policies = case_policies(case)
    reference, fast = pair(lambda impl: Engine(policies, stages=None, impl=impl), impl_name)
    for item in doc["spec"]["inputs"]:
        kind = item["type"]
        payload = orjson.dumps(item[kind], default=str)
        assert_same(reference, fast, [payload], kind)
        assert_same(reference, fast, [payload])


# --- hypothesis: mutated and malformed records -----------------------------------------------

POLICY = """
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata: {name: deployments}
spec:
  resource: {apiGroup: apps, kind: Deployment}
  auditRules:
    - match: audit.verb == 'create' && audit.responseObject.metadata.name == 'web'
      summary: "{{ actor }} created {{ link(audit.objectRef.name, audit.responseObject) }}"
    - match: audit.verb in ['update', 'patch'] && audit.objectRef.subresource == 'scale'
      summary: "scaled to {{ audit.requestObject.spec.replicas }}"
    - match: >-
        audit.verb == 'patch' && !has(audit.objectRef.subresource) && has(audit.requestObject.spec)
      summary: "patched {{ audit.requestObject.spec }}"
    - match: audit.verb == 'delete'
      summary: "deleted {{ audit.responseObject.details.name }}"
    - match: audit.responseStatus.code >= 400
      summary: "failed {{ audit.verb }}"
  eventRules:
    - match: event.reason == 'Ready'
      summary: "{{ event.regarding.name }} ready"
"""

KEYS = ["verb", "stage", "objectRef", "requestObject", "responseObject", "user", "auditID"]
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def base_record(verb: str, subresource: str | None) -> dict[str, Any]:
    ref = {"apiGroup": "apps", "resource": "deployments", "name": "web", "namespace": "ns"}
    if subresource:
        ref["subresource"] = subresource
    body = {"metadata": {"name": "web", "uid": "u-1", "generation": 3}, "spec": {"replicas": 2}}
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "a-1",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": "alice@example.com", "extra": {"project": ["p"]}},
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": 200},
        "requestObject": body,
        "responseObject": body,
        "requestReceivedTimestamp": "2026-11-20T10:00:00.123456Z",
        "stageTimestamp": "2026-11-20T10:00:00.123456Z",
    }


@st.composite
def records(draw: st.DrawFn) -> bytes:
    verb = draw(st.sampled_from(["create", "update", "patch", "delete", "get"]))
    record: dict[str, Any] = base_record(verb, draw(st.sampled_from([None, "scale", "status"])))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(KEYS))
        action = draw(st.sampled_from(["value", "delete", "case", "unknown", "nested"]))
        if action == "value":
            record[key] = draw(JSON)
        elif action == "delete":
            record.pop(key, None)
        elif action == "case" and key in record:
            record[key.upper()] = record.pop(key)
        elif action == "unknown":
            record[draw(st.text(max_size=4))] = draw(JSON)
        elif action == "nested" and isinstance(record.get(key), dict):
            record[key] = {
                **record[key],
                draw(st.sampled_from(["metadata", "spec", "subresource", "code"])): draw(JSON),
            }
    # the stdlib encoder: integers beyond 64 bits, \u escapes (surrogate pairs) when ensure_ascii
    payload = json.dumps(record, separators=(",", ":"), ensure_ascii=draw(st.booleans())).encode()
    mangle = draw(st.sampled_from(["none", "none", "escape", "duplicate", "cut", "byte", "list"]))
    if mangle == "escape":
        payload = payload.replace(b'"verb"', b'"v\\u0065rb"', 1)
    elif mangle == "duplicate":
        payload = payload[:-1] + b',"verb":"delete"}'
    elif mangle == "cut":
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif mangle == "byte":
        at = draw(st.integers(0, len(payload) - 1))
        payload = payload[:at] + bytes([draw(st.integers(0, 255))]) + payload[at + 1 :]
    elif mangle == "list":
        payload = (
            b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
            + payload
            + b","
            + payload
            + b"]}"
        )
    return payload


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def small(request: pytest.FixtureRequest) -> tuple[Translator, Translator]:
    policies = parse_policy_text(POLICY, "policy.yaml")
    return pair(lambda impl: Engine(policies, impl=impl), request.param)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=records())
def test_hypothesis_records(small: tuple[Translator, Translator], payload: bytes) -> None:
    reference, fast = small
    assert_same(reference, fast, [payload])
    assert_same(reference, fast, [payload], "audit")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()))
def test_hypothesis_arbitrary_bytes(small: tuple[Translator, Translator], payload: bytes) -> None:
    reference, fast = small
    assert_same(reference, fast, [payload])


@pytest.mark.parametrize("impl_name", IMPLEMENTATIONS)
@pytest.mark.parametrize("policies", ["bundled", "real"])
def test_the_fast_path_is_taken(
    policies: str,
    impl_name: str,
    corpus: list,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    """Guard against a fast path that silently hands everything to the reference path.

    On the generated corpus with the bundled policies (always) and with the real-policy corpus
    of ``../shared`` (skipped without it, as that fixture says).
    """
    paths = policy_paths(policies, request)
    _reference, fast = pair(lambda impl: load_engine(paths, impl=impl), impl_name)
    engine = fast.engine
    evaluated = 0  # records no route decision settles: their rules run
    for record in corpus:
        if record.get("apiVersion") != "audit.k8s.io/v1":
            continue
        route, selector = peek_route(record), peek_selector(record)
        if route is None or route[1] is None or selector is None:
            continue
        if not engine.audit_skip_reason(*route):
            evaluated += not engine.audit_selects_nothing(route[1], *selector)
    assert evaluated > 100, "the corpus must reach rule evaluation"
    handed: list[object] = []
    twin_audit = fast._audit

    def counting(obj: Any, out: Output, payload: bytes | None) -> None:
        handed.append(obj)
        twin_audit(obj, out, payload)

    monkeypatch.setattr(fast, "_audit", counting)
    lines = [orjson.dumps(r) for r in corpus if r.get("apiVersion") == "audit.k8s.io/v1"]
    out = Output()
    for line in lines:
        fast.translate(line, out)
    assert out.records == len(lines)
    assert out.activities, "the fast path must produce activities"
    assert len(handed) < evaluated // 20  # only records with failing policies go to the reference


@st.composite
def events(draw: st.DrawFn) -> bytes:
    involved = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "ns"}
    event: dict[str, Any] = {
        "apiVersion": draw(st.sampled_from(["events.k8s.io/v1", "v1", "other"])),
        "kind": "Event",
        "metadata": {"uid": "e-1", "annotations": {"a": "b"}},
        "reason": draw(st.sampled_from(["Ready", "Other", None, 3])),
        "count": 2,
        "eventTime": "2026-11-20T10:00:00.123456Z",  # no wall clock in the activity
    }
    where = draw(st.sampled_from(["regarding", "involvedObject", "both", "null"]))
    if where in ("regarding", "both"):
        event["regarding"] = {**involved, "kind": draw(st.sampled_from(["Deployment", "Pod", ""]))}
    if where in ("involvedObject", "both"):
        event["involvedObject"] = involved
    if where == "null":
        event["regarding"] = None
        event["involvedObject"] = draw(JSON)
    if draw(st.booleans()):
        event[draw(st.sampled_from(["metadata", "regarding", "note"]))] = draw(JSON)
    return json.dumps(event).encode()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=events(), hinted=st.booleans())
def test_hypothesis_events(
    small: tuple[Translator, Translator], payload: bytes, hinted: bool
) -> None:
    reference, fast = small
    assert_same(reference, fast, [payload], "event" if hinted else None)


@st.composite
def event_lists(draw: st.DrawFn) -> bytes:
    """Lists of Events as the ingest publishes them on ``events.p<N>``, with hostile items,
    another list ``apiVersion``, ``items`` of the wrong type, and malformed bytes."""
    items = [
        draw(st.sampled_from([b"null", b"3", b'"x"', b"[]", b"[1,{}]", b"{}", b"true"]))
        if draw(st.integers(0, 4)) == 0
        else draw(events())
        for _ in range(draw(st.integers(0, 4)))
    ]
    version = draw(st.sampled_from(["v1", "events.k8s.io/v1", "audit.k8s.io/v1", "v2"]))
    body = b"[" + b",\n ".join(items) + b"]"
    if draw(st.integers(0, 9)) == 0:
        body = draw(st.sampled_from([b"null", b"{}", b"7", b'"items"']))
    payload = b'{"kind":"EventList","apiVersion":"%s","metadata":{},"items":%s}' % (
        version.encode(),
        body,
    )
    mangle = draw(st.sampled_from(["none", "none", "none", "cut", "byte", "duplicate", "kind"]))
    if mangle == "cut":
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif mangle == "byte":
        at = draw(st.integers(0, len(payload) - 1))
        payload = payload[:at] + bytes([draw(st.integers(0, 255))]) + payload[at + 1 :]
    elif mangle == "duplicate":
        payload = payload[:-1] + b',"items":[' + draw(events()) + b"]}"
    elif mangle == "kind":
        payload = payload[:-1] + b',"kind":"Event"}'
    return payload


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=event_lists())
def test_hypothesis_event_lists(small: tuple[Translator, Translator], payload: bytes) -> None:
    reference, fast = small
    assert_same(reference, fast, [payload], "event")


@pytest.mark.parametrize("impl_name", IMPLEMENTATIONS)
def test_a_list_of_events_is_its_events_sent_singly(
    impl_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each item of a list of Events on the EVENTS stream gives what it gives alone, and the
    origin of its activity is its own span in the list."""
    policies = parse_policy_text(POLICY, "policy.yaml")
    reference, fast = pair(lambda impl: Engine(policies, impl=impl), impl_name)
    involved = {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "ns"}
    singles = [
        orjson.dumps(
            {
                "apiVersion": version,
                "kind": "Event",
                "metadata": {"uid": f"e-{i}"},
                "reason": "Ready",
                "eventTime": "2026-11-20T10:00:00.123456Z",
                field: {**involved, "name": f"web-{i}"},
            }
        )
        for i, (version, field) in enumerate(
            [("events.k8s.io/v1", "regarding"), ("v1", "involvedObject")] * 3
        )
    ]
    for version in ("v1", "events.k8s.io/v1"):
        listed = b'{"kind":"EventList","apiVersion":"%s","items":[%s]}' % (
            version.encode(),
            b",".join(singles),
        )
        for translator in (reference, fast):
            alone, together = Output(), Output()
            for single in singles:
                translator.translate(single, alone, "event")
            translator.translate(listed, together, "event")
            assert together.activities == alone.activities
            assert len(together.activities) == len(singles)
            assert [bytes(b[s:e]) for b, s, e in together.origins] == singles
            assert (together.records, together.errors) == (len(singles), 0)
    handed: list[int] = []
    monkeypatch.setattr(fast, "_guarded_event", lambda *args: handed.append(args[3]))
    fast.translate(listed, Output(), "event")
    assert handed == [] and fast.fast_path_errors == 0, "the fast path takes good items"


@pytest.mark.parametrize("impl_name", IMPLEMENTATIONS)
def test_an_event_is_parsed_once_and_hostile_events_go_as_the_reference_goes(
    impl_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single Event (on either stream), and each item of a list of Events, is parsed once on
    the fast path; hostile Events (a lone surrogate, invalid UTF-8, duplicate members, a
    reason no rule can compare, an ``items`` member) give what the reference path gives, on
    either stream."""
    policies = parse_policy_text(POLICY, "policy.yaml")
    reference, fast = pair(lambda impl: Engine(policies, impl=impl), impl_name)
    involved = b'{"apiVersion":"apps/v1","kind":"Deployment","namespace":"ns","name":"web"}'
    head = b'{"apiVersion":"v1","kind":"Event","metadata":{"uid":"e-1"},"count":2,'
    head += b'"eventTime":"2026-11-20T10:00:00.123456Z",'  # no wall clock in the activity
    good = head + b'"reason":"Ready","involvedObject":%s}' % involved
    hostile = [
        head + b'"reason":"Ready\\ud800","involvedObject":%s}' % involved,
        head + b'"reason":"Ready","note":"\xff\xfe","involvedObject":%s}' % involved,
        head + b'"reason":"Ready","involvedObject":{},"involvedObject":%s}' % involved,
        head + b'"reason":"Ready","involvedObject":%s,"involvedObject":null}' % involved,
        head + b'"reason":"Ready","involvedObject":%s,"reason":3}' % involved,
        head + b'"reason":"Ready","regarding":null,"involvedObject":%s}' % involved,
        head + b'"reason":"Ready","items":[1],"involvedObject":%s}' % involved,
    ]
    for hint in (None, "audit", "event"):
        assert_same(reference, fast, [good, *hostile, good], hint)
    listed = b'{"kind":"EventList","apiVersion":"v1","items":[%s]}' % b",".join([good] * 3)
    assert_same(reference, fast, [listed, *hostile], "event")

    parsed: list[int] = []
    loads = orjson.loads

    class Counting:
        JSONDecodeError = orjson.JSONDecodeError

        @staticmethod
        def loads(text: bytes) -> Any:
            parsed.append(len(text))
            return loads(text)

    monkeypatch.setattr(translate_module, "orjson", Counting)
    out = Output()
    for hint in (None, "audit", "event"):
        fast.translate(good, out, hint)
    assert parsed == [len(good)] * 3, "a single Event is parsed once, whole"
    parsed.clear()
    fast.translate(listed, out, "event")
    route_text, *items = parsed  # the list's routing members (its items left out), then
    assert route_text < len(good) and items == [len(good)] * 3, "each item is parsed once"
    assert len(out.activities) == 6 and fast.fast_path_errors == 0
