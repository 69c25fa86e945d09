"""Hostile input through the translator: one bad record or item costs itself, never its neighbours.

Every case runs on both implementations (the twin and the fast path) and checks that a dead letter
keeps its record's text byte for byte, whatever its JSON type (``docs/reliability.md``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.cli import main
from processor.deadletter import encode_dead_letter, original_payload_bytes
from processor.engine import Engine
from processor.policy import parse_policy_text
from processor.records.spans import list_item_spans, member_span
from processor.translate import Output, Translator
from tests.unit.parity import PATHS, translator_on
from tests.unit.test_translate import POLICIES, audit, event


@pytest.fixture(params=PATHS)
def translator(request: pytest.FixtureRequest) -> Translator:
    policies = parse_policy_text(POLICIES, "policies.yaml")
    return translator_on(
        request.param, lambda impl: Engine(policies, impl=impl), max_record_bytes=64 * 1024
    )


def run(translator: Translator, *payloads: bytes, hint: Any = None) -> Output:
    out = Output()
    for payload in payloads:
        translator.translate(payload, out, hint)
    return out


def kept(record: dict[str, Any]) -> bytes:
    """The payload bytes a dead letter gives back, read from its message as ``dlq retry`` does."""
    return original_payload_bytes(
        orjson.loads(encode_dead_letter(record)), encode_dead_letter(record)
    )


def event_list(*items: bytes, sep: bytes = b",") -> bytes:
    return b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + sep.join(items) + b"]}"


GOOD = orjson.dumps(audit("create"))


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (b"null", "EventList item 1 is null, not an object"),
        (b"42", "EventList item 1 is a number, not an object"),
        (b"-1.5e3", "EventList item 1 is a number, not an object"),
        (b'"text"', "EventList item 1 is a string, not an object"),
        (b"[1, 2]", "EventList item 1 is an array, not an object"),
        (b"true", "EventList item 1 is a bool, not an object"),
    ],
)
def test_a_non_object_item_is_dead_lettered_alone_with_its_bytes(
    translator: Translator, item: bytes, reason: str
) -> None:
    out = run(translator, event_list(GOOD, item, GOOD))
    assert len(out.activities) == 2
    assert [d["error"] for d in out.dead_letters] == [reason]
    assert kept(out.dead_letters[0]) == item
    assert out.records == 3 and out.errors == 1


def test_items_keep_their_exact_text_on_the_twin_path_too(translator: Translator) -> None:
    """Exponents and odd spacing send the list to the full decode; spans are still exact."""
    spaced = b'{ "x" : 1e2 , "objectRef" : 5 }'
    payload = event_list(GOOD, b"  null\n", spaced, b"\t7 ", sep=b" ,\n ")
    out = run(translator, payload)
    assert len(out.activities) == 1
    assert [kept(d) for d in out.dead_letters] == [b"null", spaced, b"7"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[1,2,3]", "record is an array, not an object"),
        (b"42", "record is a number, not an object"),
        (b"null", "record is null, not an object"),
        (b'"s"', "record is a string, not an object"),
        (b'{"a":"\xff"}', "invalid JSON: invalid UTF-8 at byte 6"),
    ],
)
def test_top_level_values_that_are_not_objects_say_what_they_are(
    translator: Translator, payload: bytes, reason: str
) -> None:
    for hint in (None, "audit"):
        out = run(translator, payload, hint=hint)
        assert [d["error"] for d in out.dead_letters] == [reason]
        assert kept(out.dead_letters[0]) == payload


def test_an_items_member_that_is_not_a_list_is_named(translator: Translator) -> None:
    out = run(translator, b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":7}')
    assert [d["error"] for d in out.dead_letters] == ["EventList items must be a list, not number"]


def test_an_exception_costs_its_item_alone(
    translator: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception (a bug) dead-letters the item as ``internal``; the rest go on."""
    real = translator.engine._evaluate_audit  # both paths' evaluation of a decoded record

    def flaky(record: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if record["objectRef"]["name"] == "boom":
            raise ZeroDivisionError("division by zero")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(translator.engine, "_evaluate_audit", flaky)
    bad = audit("create")
    bad["objectRef"]["name"] = "boom"
    boom = orjson.dumps(bad)
    out = run(translator, event_list(GOOD, boom, GOOD), boom, GOOD)
    assert len(out.activities) == 3
    assert [(d["errorType"], d["error"]) for d in out.dead_letters] == [
        ("internal", "EventList item 1: internal error: ZeroDivisionError: division by zero"),
        ("internal", "internal error: ZeroDivisionError: division by zero"),
    ]
    assert [kept(d) for d in out.dead_letters] == [boom, boom]
    assert out.records == 5 and out.errors == 2


def test_outputs_remember_the_text_they_came_from(translator: Translator) -> None:
    payload = event_list(GOOD, b"null", GOOD)
    out = run(translator, payload, GOOD)
    texts = [buf[s:e] for buf, s, e in out.origins]
    assert texts == [GOOD, GOOD, GOOD]
    assert [buf[s:e] for buf, s, e in out.dead_origins] == [b"null"]


def k8s_event_list(*items: bytes, version: bytes = b"v1", sep: bytes = b",") -> bytes:
    return b'{"kind":"EventList","apiVersion":"%s","items":[%s]}' % (version, sep.join(items))


READY = orjson.dumps(event("Ready"))
CORE_READY = orjson.dumps(
    {
        "apiVersion": "v1",
        "kind": "Event",
        "reason": "Ready",
        "involvedObject": event("x")["regarding"],
    }
)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (b"42", "EventList item 1 is a number, not an object"),
        (b"-1.5e3", "EventList item 1 is a number, not an object"),
        (b'"text"', "EventList item 1 is a string, not an object"),
        (b"[1, 2]", "EventList item 1 is an array, not an object"),
        (b"true", "EventList item 1 is a bool, not an object"),
    ],
)
@pytest.mark.parametrize("version", [b"v1", b"events.k8s.io/v1"])
def test_a_non_object_item_of_an_event_list_is_dead_lettered_alone(
    translator: Translator, item: bytes, reason: str, version: bytes
) -> None:
    out = run(translator, k8s_event_list(READY, item, CORE_READY, version=version), hint="event")
    assert len(out.activities) == 2
    assert [(d["type"], d["errorType"], d["error"]) for d in out.dead_letters] == [
        ("k8s-event", "unmarshal", reason)
    ]
    assert kept(out.dead_letters[0]) == item
    assert [buf[s:e] for buf, s, e in out.origins] == [READY, CORE_READY]
    assert out.records == 3 and out.errors == 1


def test_event_list_items_are_judged_as_single_events(translator: Translator) -> None:
    """A null item is skipped as a null Event is; a failing policy dead-letters that item with its
    exact text (odd spacing and exponents send the list to the full decode)."""
    broken = b'{ "kind": "Event", "reason": "Broken", "count": 1e2,\n "regarding": %s }' % (
        orjson.dumps(event("x")["regarding"])
    )
    payload = k8s_event_list(READY, b" null ", broken, READY, sep=b" ,\n ")
    out = run(translator, payload, hint="event")
    singly = run(translator, READY, b"null", broken, READY, hint="event")
    specs = [a["spec"] for a in out.activities]  # no eventTime: created now
    assert specs == [a["spec"] for a in singly.activities] and len(specs) == 2
    assert [d["error"] for d in out.dead_letters] == [d["error"] for d in singly.dead_letters]
    assert [kept(d) for d in out.dead_letters] == [broken]
    assert (out.records, out.skip_reasons) == (singly.records, singly.skip_reasons)


def test_an_event_lists_items_member_that_is_not_a_list_is_named(translator: Translator) -> None:
    out = run(translator, b'{"kind":"EventList","apiVersion":"v1","items":{}}', hint="event")
    assert [(d["type"], d["error"]) for d in out.dead_letters] == [
        ("k8s-event", "EventList items must be a list, not object")
    ]
    out = run(translator, b'{"kind":"EventList","apiVersion":"v1"}', hint="event")
    assert [d["error"] for d in out.dead_letters] == ["EventList items must be a list, not missing"]


def test_another_list_on_the_events_stream_is_one_event(translator: Translator) -> None:
    """Only EventLists of v1 or events.k8s.io/v1 are split; anything else is one Event, as
    upstream reads it (skipped: no involved object)."""
    for version in (b"v2", b"audit.k8s.io/v1"):
        out = run(translator, k8s_event_list(READY, version=version), hint="event")
        assert (out.records, out.skip_reasons, out.activities) == (
            1,
            {"no_involved_object": 1},
            [],
        )


def test_an_exception_costs_its_event_list_item_alone(
    translator: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = translator.engine.translate_event

    def flaky(record: dict[str, Any] | None, *args: Any, **kwargs: Any) -> Any:
        if record is not None and record.get("reason") == "Boom":
            raise ZeroDivisionError("division by zero")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(translator.engine, "translate_event", flaky)
    boom = orjson.dumps(event("Boom"))
    out = run(translator, k8s_event_list(READY, boom, READY), hint="event")
    assert len(out.activities) == 2
    assert [(d["errorType"], d["error"]) for d in out.dead_letters] == [
        ("internal", "EventList item 1: internal error: ZeroDivisionError: division by zero")
    ]
    assert [kept(d) for d in out.dead_letters] == [boom]
    assert out.records == 3 and out.errors == 1


def test_translate_command_dead_letters_a_null_item(tmp_path: Path) -> None:
    """Issue defect 2: ``activity translate`` aborted with a traceback on a ``null`` item."""
    policies = tmp_path / "p.yaml"
    policies.write_text(POLICIES)
    source = tmp_path / "in.jsonl"
    source.write_bytes(event_list(GOOD, b"null", b"42") + b"\n")
    dlq = tmp_path / "dlq.jsonl"
    out = tmp_path / "out.jsonl"
    args = ["--policies", str(policies), "--input", str(source), "--output", str(out)]
    code = main(["translate", *args, "--dead-letter", str(dlq)])
    assert code == 0
    letters = [orjson.loads(line) for line in dlq.read_bytes().splitlines()]
    assert [d["originalPayload"] for d in letters] == [None, 42]
    assert len(out.read_bytes().splitlines()) == 1


# --- the span finders -----------------------------------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(
    items=st.lists(_json, max_size=6),
    other=st.dictionaries(st.text(), _json, max_size=3),
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
)
def test_list_item_spans_give_each_items_text(
    items: list[Any], other: dict[str, Any], indent: int | None, ascii_only: bool
) -> None:
    doc = {**{k: v for k, v in other.items() if k != "items"}, "items": items}
    payload = json.dumps(doc, indent=indent, ensure_ascii=ascii_only).encode()
    spans = list_item_spans(payload)
    assert spans is not None
    assert [orjson.loads(payload[s:e]) for s, e in spans] == orjson.loads(payload)["items"]
    span = member_span(payload, "items")
    assert span is not None and orjson.loads(payload[span[0] : span[1]]) == items


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"items":[1],"items":[2,3]}', [b"2", b"3"]),  # the last member wins, as in orjson
        (b'{"it\\u0065ms":[1]}', [b"1"]),  # keys compare unescaped
        (b'{"a":{"items":[1]}}', None),
        (b'{"items":[1],"items":5}', None),
        (b"[1,2]", None),
        (b'{"items":[ ]}', []),
    ],
)
def test_list_item_spans_follow_orjson(payload: bytes, expected: list[bytes] | None) -> None:
    spans = list_item_spans(payload)
    assert (None if spans is None else [payload[s:e] for s, e in spans]) == expected


def test_a_record_the_fast_path_hands_over_is_counted_once_when_the_twin_raises(
    translator: Translator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing policy sends a record from the fast path to the twin; an exception there
    dead-letters it once and counts it once (it is not handed over a second time)."""
    real = translator.engine.translate_audit

    def twin_raises(record: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("dispatch"):
            raise ZeroDivisionError("division by zero")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(translator.engine, "translate_audit", twin_raises)
    out = run(translator, orjson.dumps(audit("patch")))  # rule "broken" fails: the twin decides
    assert out.records == 1 and out.errors == 1
    assert [d["errorType"] for d in out.dead_letters] == ["internal"]
