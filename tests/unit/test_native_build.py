"""Byte parity of the Activity builders: the native one (``_native/activity.pyx``) and the twin's
``build_audit``/``build_event`` give exactly ``orjson.dumps`` of the dict builders (the
specification), with the same name and subject fields.

Over the builder calls the engine makes for the conformance cases, the real-policy corpus and the
generated records (both mixes), and over hostile strings: control characters, quotes,
backslashes, non-ASCII, lone surrogates (refused as orjson refuses them), empty fields, huge
values, odd timestamps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from processor import activity as spec
from processor.activity import Built
from processor.bench.corpus import generate
from processor.bench.harness import default_policy_paths
from processor.engine import Engine
from processor.kinds import KindResolver
from processor.native import Implementation, twin
from processor.policy import parse_policy_text
from processor.policy.compile import load_engine
from processor.records import decode_audit, timefmt
from processor.subjects import activity_subject
from processor.translate import Output, Translator
from tests.unit.parity import IMPLEMENTATIONS, case_policies, implementation, translator_on

NOW = "2026-12-07T00:00:00.000Z"
Call = tuple[str, tuple[Any, ...]]


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record without a usable time gets "now": the same now for every builder."""
    monkeypatch.setattr(timefmt, "now_millis", lambda: NOW)


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> Implementation:
    return implementation(request.param)


def reference(which: str, args: tuple[Any, ...]) -> bytes:
    """The specification: the dict builder's Activity encoded by orjson."""
    build = spec.build_audit_activity if which == "audit" else spec.build_event_activity
    return orjson.dumps(build(*args))


def assert_same(impl: Implementation, calls: list[Call]) -> None:
    """``impl``'s builders give the reference bytes and consistent fields for every call."""
    assert calls, "no builder call to compare"
    for which, args in calls:
        build = impl.activity.build_audit if which == "audit" else impl.activity.build_event
        built = build(*args)
        assert type(built) is Built
        assert built.data == reference(which, args), args
        decoded = built.activity()
        assert built.name == decoded["metadata"]["name"]
        assert activity_subject(built, "p") == activity_subject(decoded, "p")
        assert (built.api_group, built.kind) == (
            decoded["spec"]["resource"].get("apiGroup", ""),
            decoded["spec"]["resource"]["kind"],
        )


def recorded(engine: Engine, payloads: list[bytes], hint: Any = None) -> list[Call]:
    """The builder calls ``engine`` makes translating ``payloads`` (the reference path)."""
    calls: list[Call] = []
    build_audit, build_event = engine._build_audit, engine._build_event

    def audit(*args: Any) -> Built:
        calls.append(("audit", args))
        return build_audit(*args)

    def event(*args: Any) -> Built:
        calls.append(("event", args))
        return build_event(*args)

    engine._build_audit, engine._build_event = audit, event  # type: ignore[method-assign]
    translator = Translator(engine, fast=False)
    out = Output()
    for payload in payloads:
        translator.translate(payload, out, hint)
    return calls


# --- what the engine builds ----------------------------------------------------------------------


def test_conformance_cases(impl: Implementation, conformance_cases_dir: Path) -> None:
    calls: list[Call] = []
    paths = sorted(conformance_cases_dir.glob("*.yaml"))
    assert paths
    for path in paths:
        doc, policies = case_policies(path)
        engine = Engine(policies, stages=None, impl=twin())
        for item in doc["spec"]["inputs"]:
            payload = orjson.dumps(item[item["type"]], default=str)
            calls += recorded(engine, [payload], item["type"])
    assert_same(impl, calls)


@pytest.mark.parametrize("mix", ["standard", "production"])
def test_generated_records(impl: Implementation, mix: str) -> None:
    engine = load_engine(default_policy_paths(), impl=twin())
    lines = [orjson.dumps(r) for r in generate(3000, seed=11, mix=mix)]
    assert_same(impl, recorded(engine, lines))


def test_real_policy_corpus(impl: Implementation, real_policies_dir: Path) -> None:
    paths = sorted(str(p) for p in real_policies_dir.glob("*.yaml"))
    engine = load_engine(paths, impl=twin())
    lines = [orjson.dumps(r) for r in generate(3000, seed=5)]
    assert_same(impl, recorded(engine, lines))


# --- hostile strings -----------------------------------------------------------------------------

HOSTILE = [
    "".join(map(chr, range(0x20))),
    '"quoted" \\back\\slash\\ \\" \\\\',
    "<script>&amp;</script>",
    "\x7f é 漢字 🎉 \u2028 \u2029 \ufeff \U0010ffff",
    "",
    "x" * 100_000,
    "line\nbreak\r\ttab\b\f",
]
SURROGATES = ["\ud800", "a\udfffb", "\udc00" * 3]

AUDIT = {
    "auditID": "a-1",
    "verb": "create",
    "user": {"username": "alice@example.com", "uid": "u-1"},
    "objectRef": {"apiGroup": "apps", "apiVersion": "v1", "resource": "deployments",
                  "namespace": "ns", "name": "web"},
    "requestReceivedTimestamp": "2026-11-20T10:00:00.123456Z",
    "responseObject": {"metadata": {"uid": "r-1"}},
}  # fmt: skip
EVENT = {
    "metadata": {"uid": "e-1", "annotations": {"platform.miloapis.com/scope.type": "project",
                                               "platform.miloapis.com/scope.name": "p1"}},
    "eventTime": "2026-11-20T10:00:05.250000Z",
    "reason": "Ready",
    "source": {"component": "kubelet"},
}  # fmt: skip
INVOLVED = {"apiVersion": "v1", "kind": "Pod", "namespace": "ns", "name": "p", "uid": "pu"}


def audit_with(text: str) -> dict[str, Any]:
    """An audit event with ``text`` in every string the builder copies, in the shape
    :func:`decode_audit` gives (not decoded: it refuses lone surrogates)."""
    return {
        **AUDIT,
        "auditID": text,
        "user": {"username": text, "uid": text, "extra": {"project": [text]}},
        "objectRef": {**AUDIT["objectRef"], "namespace": text, "name": text},
        "responseObject": {"metadata": {"uid": text}},
    }


def link_with(text: str) -> list[Any]:
    return [
        (text, {"apiVersion": text + "/v1", "kind": text, "name": text, "namespace": text}),
        {"marker": text, "resource": {"metadata": {"name": text, "uid": text}, "type": text}},
        (7, {"resource": "pods"}),
    ]


def hostile_calls(text: str) -> list[Call]:
    resolver = KindResolver()
    event = {**EVENT, "reason": text, "reportingController": text}
    scope = {"platform.miloapis.com/scope.type": text, "platform.miloapis.com/scope.name": text}
    event["metadata"] = {"uid": text, "annotations": scope}
    involved = {**INVOLVED, "namespace": text, "name": text, "uid": text}
    return [
        ("audit", (decode_audit(AUDIT), "apps", "Deployment", text, link_with(text), resolver)),
        ("audit", (audit_with(text), "apps", "Deployment", text, link_with(text), resolver)),
        ("audit", (audit_with(text), text, text, "s", (), None)),
        ("event", (EVENT, INVOLVED, "", "Pod", text, link_with(text), resolver)),
        ("event", (event, involved, text, text, text, link_with(text), resolver)),
    ]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings(impl: Implementation, text: str) -> None:
    assert_same(impl, hostile_calls(text))


@pytest.mark.parametrize("text", SURROGATES)
def test_lone_surrogates_are_refused_as_orjson_refuses_them(
    impl: Implementation, text: str
) -> None:
    """Anywhere in the Activity (a summary, a link, a user's name, a tenant) a lone surrogate
    raises orjson's error; in the name's hash input, the twin's UnicodeEncodeError."""
    for which, args in hostile_calls(text):
        build = impl.activity.build_audit if which == "audit" else impl.activity.build_event
        with pytest.raises((orjson.JSONEncodeError, UnicodeEncodeError)) as want:
            reference(which, args)
        with pytest.raises(type(want.value)) as got:
            build(*args)
        assert str(got.value) == str(want.value)


TIMES = [
    "2026-11-20T10:00:05Z",
    "2026-11-20T10:00:05.123456Z",
    "2024-02-29T23:59:59Z",
    "2023-02-29T10:00:00Z",  # no such day: the next field
    "2026-11-20T24:00:00Z",
    "2026-13-01T10:00:00Z",
    "0000-01-01T10:00:00Z",
    "2026-11-20T10:00:05.12345xZ",
    "2026-11-20T10:00:05.1234567Z",
    "2026-11-20T11:00:05.5+01:00",
    "２026-11-20T10:00:05Z",
    "2026-11-20T10:00:05.１23456Z",
    '2026-11-20T10:00:05."23456Z',
    "not a time",
    "",
    None,
    7,
]


@pytest.mark.parametrize("first", TIMES, ids=range(len(TIMES)))
def test_event_timestamps(impl: Implementation, first: Any) -> None:
    calls: list[Call] = []
    for later in ("2026-01-02T03:04:05Z", "bad", None):
        event = {**EVENT, "eventTime": first, "lastTimestamp": later}
        event["firstTimestamp"] = "2026-05-06T07:08:09.100000Z"
        calls.append(("event", (event, INVOLVED, "", "Pod", "s")))
        meta = {**EVENT["metadata"], "creationTimestamp": later}
        bare = {"metadata": meta, "eventTime": first}
        calls.append(("event", (bare, INVOLVED, "", "Pod", "s")))
    assert_same(impl, calls)


@pytest.mark.parametrize("value", TIMES, ids=range(len(TIMES)))
def test_audit_timestamps(impl: Implementation, value: Any) -> None:
    odd = "é" * 19 + "." + "x" * 6 + "Z"  # 27 characters, not ASCII
    calls: list[Call] = []
    for stamp in (value, odd, '2026-11-20T10:00:"0.123456Z'):  # past what decode_audit lets by
        audit = {**decode_audit(AUDIT), "requestReceivedTimestamp": stamp}
        calls.append(("audit", (audit, "apps", "Deployment", "s")))
    assert_same(impl, calls)


# --- a lone surrogate through the translator ------------------------------------------------------

SURROGATE_POLICY = """
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata: {name: deployments}
spec:
  resource: {apiGroup: apps, kind: Deployment}
  auditRules:
    - match: "true"
      summary: "made \\ud800 {{ audit.objectRef.name }}"
"""


@pytest.mark.parametrize("path", ["python", "native"])
def test_a_summary_orjson_refuses_is_one_dead_letter_on_every_path(path: str) -> None:
    """The builder raises where the engine builds: the translator dead-letters the record
    (``internal``), the same on the reference path and on the fast path of both builders."""
    policies = parse_policy_text(SURROGATE_POLICY, "p.yaml")

    def letters(on: str) -> list[dict[str, Any]]:
        translator = translator_on(on, lambda impl: Engine(policies, impl=impl))
        out = Output()
        translator.translate(orjson.dumps({**AUDIT, "stage": "ResponseComplete"}), out, "audit")
        assert out.activities == [] and out.errors == 1
        return [
            {k: v for k, v in orjson.loads(orjson.dumps(d)).items() if k != "timestamp"}
            for d in out.dead_letters
        ]

    want = letters("reference")
    assert [d["errorType"] for d in want] == ["internal"]
    assert "TypeError: str is not valid UTF-8: surrogates not allowed" in want[0]["error"]
    assert letters(path) == want


def test_escapes_at_every_offset(impl: Implementation) -> None:
    """A character to escape (or one not to) at every place of strings of 0 to 24 characters:
    the native escaper reads 8 bytes at a time."""
    audit = decode_audit(AUDIT)
    calls: list[Call] = []
    for n in range(25):
        for at in range(n):
            for ch in ("\x00", "\x1f", '"', "\\", "\x7f", " ", "é", "\u2028", "~"):
                summary = "a" * at + ch + "b" * (n - at - 1)
                calls.append(("audit", (audit, "apps", "Deployment", summary)))
    assert_same(impl, calls)


@pytest.mark.parametrize("portable", [False, True], ids=["cpu", "portable"])
def test_native_sha256_is_hashlibs(portable: bool) -> None:
    """``_native/sha256.h`` (the SHA extensions where the CPU has them, and the portable C)
    over every length around the block boundaries, and long inputs."""
    import hashlib
    import random

    unit = implementation("native").activity
    rng = random.Random(4)
    for n in [*range(300), 1000, 4096, 100_003]:
        data = rng.randbytes(n)
        assert unit._sha256(data, portable) == hashlib.sha256(data).digest(), n
