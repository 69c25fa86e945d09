"""Native summary templates (``processor._native.template``) against their twin
(``processor/policy/template.py``).

Every summary of a policy set is compiled by both template units (each with its own
implementation's plans) and rendered on the same activations: the text must be equal, and so must
the ``link()`` calls collected and every ``TemplateError`` message; so must the compile errors,
``static`` and the programs. The policy sets and records: the conformance cases (their policies and
inputs), the bundled policies and the real-policy corpus over generated records of both mixes
(``processor.bench.corpus``), and edge templates (every value type, failing blocks in every
position, static templates, empty blocks). The native side skips (or fails, under
``PROCESSOR_REQUIRE_EXTENSIONS=1``) as :mod:`tests.unit.parity` says.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from processor.cel import AUDIT_ENV
from processor.cel.plan import LINKS
from processor.cel.values import TypeValue, UInt
from processor.errors import TemplateError
from processor.native import Implementation, twin
from processor.policy import template as twin_template
from processor.policy.model import Policy
from tests.conftest import shared_files
from tests.unit import parity
from tests.unit.parity import (
    ENVS,
    case_inputs,
    corpus_policies,
    generated_activations,
    implementation,
    rules_by_env,
)

CASES = shared_files("conformance", "cases", ids=lambda path: path.stem)

#: A summary: the name of its rule environment and its template text.
Summary = tuple[str, str]


@pytest.fixture(scope="module")
def native_impl() -> Implementation:
    impl = implementation("native")
    # the hand-written unit, not the twin compiled as it is
    assert impl.template.__doc__ != twin_template.__doc__
    return impl


def outcome(template: Any, variables: dict[str, Any]) -> tuple[Any, ...]:
    """``("text", text, links)`` or ``("error", message, links)`` (links as ``repr``)."""
    links: list = []
    try:
        text = template.render(variables, links)
    except TemplateError as exc:
        return ("error", str(exc), repr(links))
    assert type(text) is str
    return ("text", text, repr(links))


class Tally(parity.Tally):
    """Every summary compiled by both template units, rendered on the same activations."""

    def __init__(self) -> None:
        super().__init__()
        self.links = 0  # renders whose ``link()`` calls were compared

    def check(self, done: Implementation, summaries: Iterable[Summary], acts: list) -> None:
        with self.unchanged(acts):
            for env_name, text in summaries:
                env = ENVS[env_name]
                spec = twin_template.SummaryTemplate(text, env, twin())
                fast = done.template.SummaryTemplate(text, env, done)
                assert type(fast).__module__ == "processor._native.template"
                assert (fast.text, fast.errors, fast.static, fast.valid) == (
                    spec.text,
                    spec.errors,
                    spec.static,
                    spec.valid,
                )
                assert [p.source for p in fast.programs()] == [p.source for p in spec.programs()]
                wanted = self.compare(
                    text, env_name, acts, partial(outcome, spec), partial(outcome, fast)
                )
                self.links += sum(want[2] != "[]" for want in wanted)

    def assert_clean(self, *, errors: bool = True, links: bool = True) -> None:  # type: ignore[override]
        super().assert_clean("text", *(["error"] if errors else []))
        assert self.links > 0 or not links, self.links


def policy_summaries(policies: Iterable[Policy]) -> list[Summary]:
    """Each rule's summary in its rule environment (duplicates once)."""
    return list(dict.fromkeys((env, rule.summary) for env, rule in rules_by_env(policies)))


def generated(count: int, mix: str) -> list[tuple[str, dict[str, Any]]]:
    """The activations of ``count`` generated records of ``mix`` (the same ones in every test)."""
    return generated_activations(count, mix, seed=11)


# -- the corpora -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_conformance_cases(case: Path, native_impl: Implementation) -> None:
    """Every summary of a case's policy on every input of the case and on generated records."""
    policy, acts = case_inputs(case, generated(60, "standard"))
    tally = Tally()
    tally.check(native_impl, policy_summaries([policy]), acts)
    tally.assert_clean(errors=False, links=False)


@pytest.mark.parametrize("policies", ["bundled", "real"])
def test_policy_corpus_on_generated_records(
    policies: str, native_impl: Implementation, request: pytest.FixtureRequest
) -> None:
    """The bundled policies and the real-policy corpus on the standard and production mixes."""
    summaries = policy_summaries(corpus_policies(policies, request))
    assert len(summaries) > 20
    tally = Tally()
    tally.check(native_impl, summaries, generated(150, "standard") + generated(50, "production"))
    tally.assert_clean()


# -- edge templates --------------------------------------------------------------------------------
EDGE_VARS: dict[str, Any] = {
    "audit": {
        "verb": "create",
        "n": 3.0,
        "big": 1234567.0,
        "small": 1e-05,
        "neg": -0.0,
        "nan": math.nan,
        "inf": -math.inf,
        "i": -2,
        "u": UInt(7),
        "t": True,
        "f": False,
        "s": "héllo {{ not a block }}",
        "e": "",
        "z": None,
        "l": ["a", 1.0, None, ["x"], {"k": "v"}, True],
        "m": {"b": 1.0, "a": {"c": None}},
        "nm": {2: "two", 1: "one"},
        "objectRef": {"name": "n", "namespace": "ns", "resource": "pods"},
    },
    "actor": "alice",
    "actorRef": {"type": "user", "name": "alice"},
    "kind": "pods",
}
#: Blocks of every value type and of every outcome (value, runtime error, compile error, empty).
EDGE_BLOCKS = [
    "{{ audit.s }}",
    "{{ audit.e }}",
    "{{ audit.t }}",
    "{{ audit.f }}",
    "{{ audit.i }}",
    "{{ audit.u }}",
    "{{ 1u }}",
    "{{ -9223372036854775807 - 1 }}",
    "{{ 18446744073709551615u }}",
    "{{ audit.z }}",
    "{{ null }}",
    "{{ audit.n }}",
    "{{ audit.big }}",
    "{{ audit.small }}",
    "{{ audit.neg }}",
    "{{ audit.nan }}",
    "{{ audit.inf }}",
    "{{ 0.1 + 0.2 }}",
    "{{ audit.l }}",
    "{{ [] }}",
    "{{ audit.m }}",
    "{{ {} }}",
    "{{ audit.nm }}",
    "{{ b'ab' }}",
    "{{ b'' }}",
    "{{ timestamp('2024-01-02T03:04:05.123456Z') }}",
    "{{ duration('90m') }}",
    "{{ duration('1.5s') }}",
    "{{ type(1) }}",
    "{{ int }}",
    "{{ type(audit.m) }}",
    "{{ link(audit.objectRef.name, audit.objectRef) }}",
    "{{ link('x', 1) }}",
    "{{ audit.t ? link(actor, actorRef) : 'no' }}",
    "{{ audit.f ? link(actor, actorRef) : 'no' }}",
    "{{ [link('a', actorRef), link('b', audit.objectRef)] }}",
    # runtime errors
    "{{ audit.missing }}",
    "{{ audit.z.x }}",
    "{{ 1 / 0 }}",
    "{{ audit.i + audit.n }}",
    "{{ audit.l[9] }}",
    '{{ "quo\\"te\\n" + audit.missing }}',
    "{{ 9223372036854775807 + 1 }}",
    # compile errors and empty blocks
    "{{ nope }}",
    "{{ audit.verb + }}",
    "{{ 1 + 'a' }}",
    "{{ }}",
    "{{}}",
    "{{ \t }}",
]
EDGE_TEXTS = [
    "",
    "static text",
    "{ not a block }",
    "{{ unclosed",
    "}} {{",
    "line\n{{ actor }}\n",
    "{{ actor\n}}",
    "héllo ✓",
]


def edge_templates() -> list[str]:
    """Each block alone, at the start, in the middle and at the end of text, beside a failing
    block in each position, and next to another block with no text between."""
    out = list(EDGE_TEXTS)
    fails = ["{{ audit.missing }}", "{{ nope }}", "{{ }}"]
    for block in EDGE_BLOCKS:
        out += [block, f"{block} tail", f"head {block}", f"a {block} b", f"{block}{block}"]
        for fail in fails:
            out += [f"{fail} x {block}", f"{block} x {fail}", f"{block} {fail} {block} "]
    return out


def test_edge_templates(native_impl: Implementation) -> None:
    acts = [("audit", EDGE_VARS)]
    tally = Tally()
    tally.check(native_impl, [("audit", t) for t in edge_templates()], acts)
    tally.assert_clean()
    assert tally.kinds["text"] > 100 and tally.kinds["error"] > 100, tally.kinds


def test_type_values_and_non_dict_links_collector(native_impl: Implementation) -> None:
    """A type value renders by name; a collector that is not a list (any ``append``) is used."""

    class Collector(list):
        pass

    variables = {**EDGE_VARS, "audit": {**EDGE_VARS["audit"], "ty": TypeValue("map")}}
    for impl in (twin(), native_impl):
        links = Collector()
        tmpl = impl.template.SummaryTemplate(
            "{{ audit.ty }} {{ link(actor, actorRef) }}", AUDIT_ENV, impl
        )
        assert tmpl.render(variables, links) == "map alice"
        assert links == [("alice", {"type": "user", "name": "alice"})], impl.name


def test_static_template_returns_its_text_and_collects_nothing(
    native_impl: Implementation,
) -> None:
    text = "".join(["static ", "text"])
    tmpl = native_impl.template.SummaryTemplate(text, AUDIT_ENV, native_impl)
    links: list = []
    assert tmpl.static and tmpl.valid and tmpl.programs() == []
    assert tmpl.render({}, links) is tmpl.text and links == []


def test_render_keeps_no_state_and_reports_time_values(native_impl: Implementation) -> None:
    """Each render is its own: the activation and collector of one do not leak into the next."""
    tmpl = native_impl.template.SummaryTemplate(
        "{{ link(actor, actorRef) }} at {{ audit.when }} after {{ audit.took }}",
        AUDIT_ENV,
        native_impl,
    )
    when = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    variables = {**EDGE_VARS, "audit": {**EDGE_VARS["audit"], "when": when}}
    variables["audit"]["took"] = timedelta(minutes=90)
    first: list = []
    second: list = []
    want = "alice at 2024-01-02 03:04:05.123456 +0000 UTC after 1h30m0s"
    assert tmpl.render(variables, first) == want
    assert tmpl.render(variables, second) == want
    assert len(first) == len(second) == 1
    assert LINKS not in variables
    assert twin_template.SummaryTemplate(tmpl.text, AUDIT_ENV, twin()).render(variables) == want
