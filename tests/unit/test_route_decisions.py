"""Route decisions: the engine's gates and the translator's remembered routes give the same answer
whatever was asked before (cold or warm), and the same as evaluating every guard of every rule."""

from __future__ import annotations

import itertools
import random
from typing import Any

import orjson
import pytest

from processor.bench.corpus import generate
from processor.engine import AuditDispatch, Engine, RuleTable, _passes
from processor.native import Implementation
from processor.policy.compile import load_engine
from processor.records.route import Routes
from processor.translate import _ROUTE, _SPLIT, Output, Translator
from tests.unit.parity import BUNDLED, impl, translator_on  # noqa: F401
from tests.unit.test_parity_translate import outcome

PATHS = sorted(str(p) for p in BUNDLED.rglob("*.yaml"))


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    return [orjson.dumps(r) for r in generate(1200, seed=3)]


def brute_select(table: RuleTable, values: tuple[Any, ...]) -> list[int]:
    """What :meth:`RuleTable.select` gives, by every guard of every rule (the definition)."""
    fields = dict(zip(("verb", "subresource", "reason", "actor"), values, strict=True))
    return [
        r.rule.index
        for r, gs in zip(table.rules, table.guards, strict=True)
        if all(_passes(g, fields[g.field]) for g in gs)
    ]


def probe_values(tables: list[RuleTable], field: str) -> list[Any]:
    """Every value a guard on ``field`` names, None, and values no guard names."""
    named = {v for t in tables for gs in t.guards for g in gs if g.field == field for v in g.values}
    return [None, "", "no-such-value", *sorted(named)]


def test_gates_select_what_every_guard_selects() -> None:
    engine = load_engine(PATHS)
    tables = [cp.audit_table for cp in engine.policies]
    verbs, subs, actors = (probe_values(tables, f) for f in ("verb", "subresource", "actor"))
    checked = 0
    for cp in engine.policies:
        for verb, sub, actor in itertools.product(verbs, subs, actors):
            want = brute_select(cp.audit_table, (verb, sub, None, actor))
            got = cp.audit_table.select(verb, sub, None, actor)
            assert [r.rule.index for r in got] == want, (cp.name, verb, sub, actor)
            checked += bool(want)
        for reason in probe_values([cp.event_table], "reason"):
            want = brute_select(cp.event_table, (None, None, reason, None))
            assert [r.rule.index for r in cp.event_table.select(None, None, reason)] == want
    assert checked > 100, "the probes must select rules"
    for key, cps in engine.audit_index.items():
        for verb, sub, actor in itertools.product(verbs, subs, actors):
            nothing = all(not brute_select(cp.audit_table, (verb, sub, None, actor)) for cp in cps)
            assert engine.audit_selects_nothing(key, verb, sub, actor) is nothing


def decided(routes: Routes, keys: list[bytes]) -> dict[bytes, Any]:
    """Each key's decision, comparable: an outcome, or a dispatch's key, needs and rules."""

    def plain(found: Any) -> Any:
        if not isinstance(found, AuditDispatch):
            return found
        selected = None
        if found.selected is not None:
            selected = [(cp.name, [r.rule.index for r in rules]) for cp, rules in found.selected]
        return {"key": found.key, "needs": found.needs, "selected": selected}

    return {key: plain(routes.decide(key)) for key in keys}


def test_route_decisions_do_not_depend_on_what_was_decided_before(
    impl: Implementation,  # noqa: F811
    corpus: list[bytes],
) -> None:
    engine = load_engine(PATHS, impl=impl)
    keys = []
    for payload in corpus:
        routed = impl.route.split_routed(payload, _SPLIT, _ROUTE, {}, None)
        if routed is not None and routed[3] is not None:
            keys.append(impl.route.unpack_document(routed[3]).route)
    keys = list(dict.fromkeys(keys))
    assert len(keys) > 100
    shuffled = keys[:]
    random.Random(5).shuffle(shuffled)
    forward = decided(Routes(engine, impl.route.unpack), keys)
    fresh = load_engine(PATHS, impl=impl)
    assert decided(Routes(fresh, impl.route.unpack), shuffled) == forward
    for key in keys:  # each key alone, on routes that have decided nothing else
        assert decided(Routes(engine, impl.route.unpack), [key]) == {key: forward[key]}
    wanted = [found for found in forward.values() if not isinstance(found, tuple)]
    assert len(wanted) > 10 and len(wanted) < len(keys)


@pytest.mark.parametrize("path", ["python", "native"])
def test_cold_and_warm_translators_give_the_same_results(path: str, corpus: list[bytes]) -> None:
    """A translator that has remembered the corpus's routes (warm) counts and translates it as a
    fresh one (cold) and as the reference path do; single records and on the audit stream."""

    def engine_for(on: Implementation) -> Engine:
        return load_engine(PATHS, impl=on)

    reference = translator_on("reference", engine_for)
    for hint in (None, "audit"):
        want = outcome(reference, corpus, hint)
        cold = translator_on(path, engine_for)
        assert outcome(cold, corpus, hint) == want
        assert outcome(cold, corpus[::-1], hint) == outcome(reference, corpus[::-1], hint)
        assert outcome(cold, corpus, hint) == want  # warm now
        assert cold.fast_path_errors == 0


@pytest.mark.parametrize("path", ["python", "native"])
def test_a_keyed_document_that_is_not_an_audit_event_is_classified_cold_and_warm(
    path: str,
) -> None:
    """A document whose keys are all audit Event fields but that classifies otherwise is split
    for its route text the first time its key is met, and from the remembered route after."""

    def engine_for(on: Implementation) -> Engine:
        return load_engine(PATHS, impl=on)

    payloads = [
        b'{"kind":"Event","apiVersion":"v1","verb":"get"}',  # a Kubernetes Event (classified)
        b'{"kind":"Other","apiVersion":"x/v1","verb":"get"}',  # neither
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","verb":"get"}',  # no items
    ]
    for hint in (None, "audit"):
        want = outcome(translator_on("reference", engine_for), payloads, hint)
        fast = translator_on(path, engine_for)
        assert outcome(fast, payloads, hint) == want
        assert outcome(fast, payloads, hint) == want
        assert fast.fast_path_errors == 0
    out = Output()
    fast = Translator(engine_for(fast.impl))
    fast.translate(payloads[0], out)
    assert (out.records, out.skip_reasons) == (1, {"no_involved_object": 1})
