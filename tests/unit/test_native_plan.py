"""Native CEL plans (``processor._native.plan``) against their twin (``processor/cel/plan.py``).

Every expression of a policy set (each rule's match and each summary block) is compiled by both
plan units and evaluated on the same activations: the results must be equal, value for value
(type included) and error for error (same message), and so must the ``link()`` calls collected.
The policy sets and records: the conformance cases (their policies and inputs), the real-policy
corpus and the bundled policies over generated records (``processor.bench.corpus``), and a set of
hand-picked expressions over edge values. The native side skips (or fails, under
``PROCESSOR_REQUIRE_EXTENSIONS=1``) as :mod:`tests.unit.parity` says.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from processor.cel import AUDIT_ENV, ast
from processor.cel.program import Program
from processor.cel.values import TypeValue, UInt
from processor.errors import CelCompileError, CelEvalError
from processor.native import Implementation, twin
from processor.policy.model import Policy
from processor.policy.template import find_blocks
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

#: An expression: the name of its rule environment and its source.
Expression = tuple[str, str]


@pytest.fixture(scope="module")
def native_impl() -> Implementation:
    return implementation("native")


# -- comparing -------------------------------------------------------------------------------------
def typed(value: Any) -> Any:
    """A comparable form of a CEL value: types kept (``1`` vs ``1.0`` vs ``true``), NaN equal."""
    if type(value) is float and math.isnan(value):
        return ("double", "nan")
    if type(value) is list:
        return ("list", [typed(v) for v in value])
    if type(value) is dict:
        return ("map", sorted(((repr(typed(k)), typed(v)) for k, v in value.items()), key=str))
    if type(value) is tuple:
        return ("tuple", [typed(v) for v in value])
    return (type(value).__name__, repr(value))


def outcome(program: Program, variables: dict[str, Any]) -> tuple[Any, ...]:
    """``("value", typed value, typed links)`` or ``("error", message)``."""
    links: list = []
    try:
        value = program.evaluate(variables, links)
    except CelEvalError as exc:
        return ("error", str(exc))
    return ("value", typed(value), typed(links))


class Tally(parity.Tally):
    """Every expression compiled by both plan units, evaluated on the same activations."""

    def check(self, done: Implementation, expressions: Iterable[Expression], acts: list) -> None:
        with self.unchanged(acts):
            for env_name, source in expressions:
                env = ENVS[env_name]
                try:
                    spec = Program(source, env, twin())
                except CelCompileError as exc:
                    with pytest.raises(CelCompileError) as info:
                        Program(source, env, done)
                    assert str(info.value) == str(exc)
                    continue
                fast = Program(source, env, done)
                assert type(fast._plan).__module__ == "processor._native.plan"
                self.compare(source, env_name, acts, partial(outcome, spec), partial(outcome, fast))

    def assert_clean(self, *, errors: bool = True) -> None:  # type: ignore[override]
        """No mismatch; values compared, and errors too unless ``errors`` is False (a policy
        whose expressions cannot fail on its inputs)."""
        super().assert_clean("value", *(["error"] if errors else []))


def policy_expressions(policies: Iterable[Policy]) -> list[Expression]:
    """Each rule's match and summary blocks, in their rule environment (duplicates once)."""
    out: dict[Expression, None] = {}
    for env, rule in rules_by_env(policies):
        out[(env, rule.match)] = None
        for block in find_blocks(rule.summary):
            if block.expression:
                out[(env, block.expression)] = None
    return list(out)


def generated(count: int, mix: str) -> list[tuple[str, dict[str, Any]]]:
    """The activations of ``count`` generated records of ``mix`` (the same ones in every test)."""
    return generated_activations(count, mix, seed=7)


# -- the corpora -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_conformance_cases(case: Path, native_impl: Implementation) -> None:
    """Every expression of a case's policy on every input of the case (and the generated corpus
    for the same policy, where inputs alone give no error or no value)."""
    policy, acts = case_inputs(case, generated(60, "standard"))
    tally = Tally()
    tally.check(native_impl, policy_expressions([policy]), acts)
    tally.assert_clean(errors=False)


@pytest.mark.parametrize("policies", ["bundled", "real"])
def test_policy_corpus_on_generated_records(
    policies: str, native_impl: Implementation, request: pytest.FixtureRequest
) -> None:
    """The bundled policies and the real-policy corpus on the standard and production mixes."""
    expressions = policy_expressions(corpus_policies(policies, request))
    assert len(expressions) > 100
    tally = Tally()
    tally.check(native_impl, expressions, generated(150, "standard") + generated(50, "production"))
    tally.assert_clean()


# -- edge values -----------------------------------------------------------------------------------
EDGE_VARS: dict[str, Any] = {
    "audit": {
        "verb": "create",
        "n": 3.0,
        "nan": math.nan,
        "i": 2,
        "u": UInt(2),
        "t": True,
        "s": "héllo",
        "e": "",
        "z": None,
        "l": ["a", 1.0, None, ["x"], {"k": "v"}],
        "ls": ["a", "b"],
        "m": {"a": 1.0, "b": {"c": "d"}},
        "nm": {1.0: "one", 2: "two", "x": "y"},
        "objectRef": {"name": "n", "namespace": "ns"},
    },
    "actor": "system:serviceaccount:kube-system:x",
    "actorRef": {"type": "serviceaccount", "name": "x"},
    "kind": "pods",
}
EDGE_EXPRESSIONS = [
    # literals, variables, paths, has()
    "1", "1u", "1.5", "'s'", "b'x'", "null", "true", "[1, 'a', null]", "{'a': 1, 2: 'b'}",
    "{'a': 1, 'a': 2}", "{1: 'a', 1.0: 'b'}", "audit", "audit.m.b.c", "audit.m.x", "audit.z.x",
    "audit.l.x", "audit.s.x", "nope", "int", "map", "type(audit.m) == map", "type(1u)",
    "type(type(1))", "has(audit.m.a)", "has(audit.m.x)", "has(audit.z.x)", "has(audit.l.x)",
    "has(audit.s.x)", "has(audit.q.x)", "{'a': {'b': 1}}.a.b", "[{'a': 1}][0].a",
    # indexes
    "audit.l[0]", "audit.l[1.0]", "audit.l[1.5]", "audit.l[1.0000001]", "audit.l[16777217.0]",
    "audit.l[9]", "audit.l[-1]", "audit.l[true]",
    "audit.l['a']", "audit.l[1u]", "audit.m['a']", "audit.m['q']", "audit.nm[1]", "audit.nm[2.0]",
    "audit.nm[2u]", "audit.nm['x']", "audit.nm[true]", "audit.s[0]", "audit.z[0]",
    # equality and membership
    "audit.verb == 'create'", "audit.verb != 'create'", "audit.n == 'x'", "audit.z == null",
    "audit.n == 3", "audit.n == 3u", "audit.i == 2.0", "audit.nan == audit.nan",
    "audit.l == ['a', 1.0, null, ['x'], {'k': 'v'}]", "audit.m == {'a': 1, 'b': {'c': 'd'}}",
    "audit.nm == {1: 'one', 2.0: 'two', 'x': 'y'}", "audit.nm == {1: 'one', 3: 'two', 'x': 'y'}",
    "[1, 2] == [1, 3]", "{'a': 1} != {'a': 1}", "type(1) == int", "type('a') == int",
    "audit.verb in ['create', 'update']", "audit.n in ['create']", "audit.n in [3, 4]",
    "'a' in audit.m", "1 in audit.nm", "1u in audit.nm", "true in audit.nm", "'q' in audit.m",
    "1 in audit.s", "audit.verb in audit.ls",
    # ordering
    "audit.n >= 3", "audit.n < 3u", "audit.i < 2.5", "'a' < 'b'", "b'a' < b'b'", "true > false",
    "audit.s < 1", "audit.z < 1", "audit.nan < 1.0", "[1] < [2]", "audit.u <= 2",
    "timestamp('2026-01-01T00:00:00Z') < timestamp('2026-01-02T00:00:00Z')",
    # logic with errors absorbed
    "audit.q.x && false", "false && audit.q.x", "audit.q.x || true", "true || audit.q.x",
    "audit.q.x && true", "audit.q.x || false", "audit.q.x && audit.r.y", "audit.i && true",
    "true && audit.i", "audit.i || false", "!audit.t", "!audit.i", "!audit.q",
    "audit.t ? 'y' : 'n'", "audit.i ? 'y' : 'n'", "audit.q ? 'y' : 'n'", "audit.t ? audit.q : 1",
    # strings and functions
    "audit.s.startsWith('hé')", "audit.s.endsWith('lo')", "audit.s.contains('ll')",
    "audit.i.startsWith('a')", "audit.s.contains(audit.i)", "audit.s.matches('^h.l+o$')",
    "matches(audit.s, 'l+')", "audit.s.matches('[')", "audit.s.matches(audit.e)",
    "audit.i.matches('x')", "size(audit.s)", "audit.s.size()", "size(audit.l)", "size(audit.m)",
    "size(b'ab')", "size(audit.n)", "string(audit.n)", "string(audit.i)", "string(audit.u)",
    "string(audit.t)", "string(audit.s)", "string(b'x')", "string(audit.z)", "string(1.5e20)",
    "dyn(audit.m)", "int(audit.n)", "int('12')", "uint(audit.n)", "double(audit.i)",
    "bool('true')", "bytes('x')", "duration('1h30m')", "timestamp('bad')",
    "timestamp('2026-01-01T00:00:00Z').getFullYear()", "type(audit.z)", "type(audit.nm)",
    # arithmetic
    "audit.s + '!'", "'a' + 1", "audit.n + 1.5", "audit.i + 1", "audit.u + 1u",
    "9223372036854775807 + 1", "audit.ls + ['c']", "audit.n - 1.0", "audit.i * 3", "audit.i / 0",
    "audit.n / 0.0", "audit.i % 0", "-audit.n", "-audit.i", "-audit.s", "7 % -3", "-7 / 2",
    # macros
    "audit.ls.all(x, x.size() == 1)", "audit.ls.exists(x, x == 'b')", "audit.l.exists(x, x == 1)",
    "audit.l.all(x, x.size() > 0)", "audit.l.exists(x, x.size() > 5)", "audit.l.all(x, x)",
    "audit.l.exists(x, x)", "audit.ls.exists_one(x, x == 'a')", "audit.l.exists_one(x, x)",
    "audit.ls.map(x, x + '!')", "audit.ls.map(x, x == 'a', x + '?')", "audit.l.map(x, x, 1)",
    "audit.ls.filter(x, x != 'a')", "audit.l.filter(x, x.size() == 1)", "audit.m.map(k, k)",
    "audit.m.all(k, k.size() == 1)", "audit.s.all(x, true)", "audit.z.exists(x, true)",
    "[[1, 2], [3]].map(x, x.map(y, y + 1))", "audit.ls.exists(audit, audit == 'a')",
    "[].all(x, x)", "[].exists(x, x)",
    # an error of a missing key (made in C) or of a runtime helper (raised), in every position
    "[audit.q.x]", "[1, audit.q]", "{'a': audit.q}", "{audit.q: 1}", "audit.ls.map(x, audit.q)",
    "[1].filter(x, audit.q)", "[1].all(x, audit.q)", "[1].exists(x, audit.q)",
    "[1].exists_one(x, audit.q)", "audit.q.exists(x, true)", "[1, 2].exists(x, x == 2 || audit.q)",
    "[0, 1].all(x, 1 / x > 0)", "[0, 1].exists(x, 1 / x > 0)",
    "[0, 1].all(x, audit.q || 1 / x > 0)",
    "size(audit.q)", "string(audit.q)", "dyn(audit.q)", "type(audit.q)", "-audit.q", "!audit.q",
    "audit.q + 1", "audit.q - 1", "audit.q in ['a']", "'a' in audit.q", "audit.q in audit.ls",
    "audit.q < 1", "1 < audit.q", "int(audit.q)", "audit.q.startsWith('a')",
    "'a'.endsWith(audit.q)",
    "audit.q.matches('a')", "'a'.matches(audit.q)", "audit.q == 'x'", "audit.q == audit.r",
    "1 == audit.q", "audit.q != 1", "audit.q[0]", "audit.l[audit.q]", "audit.m[audit.q]",
    "audit.q ? 1 : 2", "audit.t ? audit.q : 2", "link(audit.q, actorRef)", "link(actor, audit.q)",
    "audit.q.x && (audit.i / 0 == 1)", "(audit.i / 0 == 1) && audit.q.x",
    "audit.q.x || (audit.i / 0 == 1)", "(audit.i / 0 == 1) || audit.q.x",
    "(audit.i / 0 == 1) && false", "audit.q && audit.i", "audit.i || audit.q",
    "audit.q.x && audit.q.y || true", "!(audit.q.x || audit.q.y)",
    # link()
    "link(actor, actorRef)", "link(audit.objectRef.name, audit.objectRef)", "link(actor, 1)",
    "link(audit.i, actorRef)", "link(actor, audit.nm)", "link(actor, audit.q)",
    "audit.t ? link('a', {'k': 'v'}) : link('b', {})",
    "audit.ls.map(x, link(x, {'name': x}))",
]  # fmt: skip


def test_edge_expressions(native_impl: Implementation) -> None:
    tally = Tally()
    bare = {k: v for k, v in EDGE_VARS.items() if k != "audit"}
    acts = [("audit", EDGE_VARS), ("audit", {**EDGE_VARS, "audit": {}}), ("audit", bare)]
    tally.check(native_impl, [("audit", source) for source in EDGE_EXPRESSIONS], acts)
    tally.assert_clean()


def test_links_only_with_a_collector(native_impl: Implementation) -> None:
    """A match (no collector) only returns the text; a summary collects ``(text, ref)`` with
    non-string keys of the ref left out."""
    program = Program("link(actor, audit.nm)", AUDIT_ENV, native_impl)
    assert program.evaluate(EDGE_VARS) == EDGE_VARS["actor"]
    links: list = []
    assert program.evaluate(EDGE_VARS, links) == EDGE_VARS["actor"]
    assert links == [(EDGE_VARS["actor"], {"x": "y"})]


def test_plans_are_native_nodes(native_impl: Implementation) -> None:
    """Sub-expressions are nodes of the extension (no closure of the twin), and a plan is
    called with the activation dict like the twin's."""
    plan = native_impl.plan.compile_plan(ast.parse("a.b == 'x' && [1].all(i, i > 0)"))
    assert type(plan).__module__ == "processor._native.plan"
    assert type(plan).__name__ == "Junction"
    assert plan({"a": {"b": "x"}}) is True
    with pytest.raises(CelEvalError, match="no such attribute: a"):
        plan({})
    assert native_impl.plan.LINKS == twin().plan.LINKS
    assert native_impl.plan.compile_plan(ast.parse("int"))({}) == TypeValue("int")
