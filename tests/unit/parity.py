"""Run tests on both implementations: the pure-Python twins and the Cython extensions.

:func:`implementation` turns a parameter (``python``/``native``) into the
:class:`processor.native.Implementation` to hand to :class:`processor.engine.Engine`, skipping the
native run when the extensions are not built (failing instead when
``PROCESSOR_REQUIRE_EXTENSIONS=1``, as CI sets, so a missing ``.so`` cannot hide); with
``PROCESSOR_NO_EXTENSIONS=1`` only the twin runs. The ``impl`` fixture gives each in turn;
``both_plans`` (autouse where imported) runs every test of a module with each implementation's CEL
plan compiler (:func:`use_plans` does it for one test), and :func:`use_unit` lets a test module's
own names (a decoder, a builder, a template class) be the ones of that implementation.
"""

from __future__ import annotations

import copy
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from processor.bench.corpus import generate
from processor.cel import AUDIT_ENV, EVENT_ENV, program
from processor.cel.env import Environment
from processor.engine import Engine
from processor.errors import RecordError
from processor.native import Implementation, native, twin, use_native
from processor.policy.loader import load_policies, parse_policy_text
from processor.policy.model import Policy, Rule, spec_to_policy
from processor.records import audit_vars, decode_audit, decode_event
from processor.records.event import classify_record, event_vars, involved_object, normalize_event
from processor.translate import Translator

IMPLEMENTATIONS = ["python", "native"]


def implementation(name: str) -> Implementation:
    """The implementation ``name`` (``python``/``native``); skip native when unavailable."""
    if name == "python":
        return twin()
    if os.environ.get("PROCESSOR_NO_EXTENSIONS") == "1":
        pytest.skip("PROCESSOR_NO_EXTENSIONS=1: the twin only")
    if not use_native():
        if os.environ.get("PROCESSOR_REQUIRE_EXTENSIONS") == "1":
            pytest.fail("native extensions required but not built")
        pytest.skip("native extensions not built (pip install -e . builds them)")
    return native()


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> Implementation:
    """The twins, then the Cython extensions (skipped as :func:`implementation` says)."""
    return implementation(request.param)


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def both_plans(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Implementation]:
    """Compile CEL plans with the twin (``python``) or the native unit (``native``)."""
    impl = implementation(request.param)
    use_plans(monkeypatch, impl)
    yield impl


def use_plans(monkeypatch: pytest.MonkeyPatch, impl: Implementation) -> None:
    """Compile the CEL plans of programs built without an implementation (``compile_expr(...,
    impl=None)``: templates, previews) with ``impl``'s ``plan`` unit, on an empty cache."""
    monkeypatch.setattr(program, "compile_plan", impl.plan.compile_plan)
    monkeypatch.setattr(program, "_CACHE", {})


def use_unit(
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    impl: Implementation,
    unit: str,
    names: Iterable[str],
) -> None:
    """Bind ``names`` in the test module ``module`` to those of ``impl``'s ``unit``, so its tests
    run on that implementation (asserting the native names do come from the extension)."""
    source = getattr(impl, unit)
    target = sys.modules[module]
    for name in names:
        value = getattr(source, name)
        if impl.name == "native":
            assert source.__name__ == f"processor._native.{unit}", source
        monkeypatch.setattr(target, name, value)


#: The translator's paths: the reference path (the specification), and the fast path on the twins
#: and on the Cython extensions.
PATHS = ["reference", *IMPLEMENTATIONS]


def translator_on(
    path: str, engine_for: Callable[[Implementation], Engine], **kwargs: Any
) -> Translator:
    """A :class:`Translator` on ``path`` (of :data:`PATHS`) with the engine ``engine_for`` gives."""
    impl = implementation("python" if path == "reference" else path)
    return Translator(engine_for(impl), fast=path != "reference", **kwargs)


def activation(record: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The rule activation of one record (an audit event or a Kubernetes Event) as the engine
    builds it, with its rule type (``audit`` or ``event``); None for a record no rule would see."""
    try:
        if classify_record(record) == "event":
            event = decode_event(record)
            found = None if event is None else involved_object(event)
            if event is None or found is None:
                return None
            return "event", event_vars(normalize_event(event, found[2]))
        return "audit", audit_vars(decode_audit(record))
    except RecordError:
        return None


@cache
def generated_activations(count: int, mix: str, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """The activations (:func:`activation`) of ``count`` generated records of ``mix``, those a
    rule would see (made once per arguments: do not change the list)."""
    acts = [activation(r) for r in generate(count, seed=seed, mix=mix)]
    return [a for a in acts if a is not None]


#: The rule environments by name (``audit`` rules, ``event`` rules).
ENVS: dict[str, Environment] = {"audit": AUDIT_ENV, "event": EVENT_ENV}


def rules_by_env(policies: Iterable[Policy]) -> Iterator[tuple[str, Rule]]:
    """Every rule of ``policies`` with the name of its environment (:data:`ENVS`)."""
    for policy in policies:
        for env, rules in (("audit", policy.audit_rules), ("event", policy.event_rules)):
            for rule in rules:
                yield env, rule


class Tally:
    """Outcomes of the twin and the native unit compared on activations: the mismatches, and
    how many of each kind of outcome were compared (so a vacuous comparison cannot pass).

    An outcome is a tuple whose first item is its kind (``"value"``, ``"text"``, ``"error"``).
    """

    def __init__(self) -> None:
        self.mismatches: list[str] = []
        self.kinds: Counter[str] = Counter()

    def compare(
        self,
        label: str,
        env: str,
        acts: list[tuple[str, dict[str, Any]]],
        spec: Callable[[dict[str, Any]], tuple[Any, ...]],
        fast: Callable[[dict[str, Any]], tuple[Any, ...]],
    ) -> list[tuple[Any, ...]]:
        """``spec`` and ``fast`` on every activation of ``acts`` in ``env``; the expected
        outcomes."""
        wanted = []
        for act_env, variables in acts:
            if act_env != env:
                continue
            want, got = spec(variables), fast(variables)
            if got != want:
                self.mismatches.append(f"{label!r} on {variables!r}: {got} != {want}")
            else:
                self.kinds[want[0]] += 1
            wanted.append(want)
        return wanted

    @staticmethod
    @contextmanager
    def unchanged(acts: list[tuple[str, dict[str, Any]]]) -> Iterator[None]:
        """Fail if what runs inside changes an activation of ``acts``."""
        before = copy.deepcopy(acts)
        yield
        assert acts == before, "an evaluation changed its activation"

    def assert_clean(self, *kinds: str) -> None:
        """No mismatch, and outcomes of each of ``kinds`` compared."""
        assert self.mismatches == [], "\n".join(self.mismatches[:10])
        for kind in kinds:
            assert self.kinds[kind] > 0, (kind, self.kinds)


#: The project's bundled policies.
BUNDLED = Path(__file__).resolve().parents[2] / "policies"


def corpus_policies(corpus: str, request: pytest.FixtureRequest) -> list[Policy]:
    """The ``bundled`` policies or the ``real`` policy corpus (``real_policies_dir``: skips, or
    fails under PROCESSOR_REQUIRE_SHARED, without the shared corpus)."""
    folder: Path = request.getfixturevalue("real_policies_dir") if corpus == "real" else BUNDLED
    return load_policies([folder])


def case_inputs(
    case: Path, extra: list[tuple[str, dict[str, Any]]]
) -> tuple[Policy, list[tuple[str, dict[str, Any]]]]:
    """A conformance case's policy and the activations of its inputs, then of ``extra``."""
    spec = yaml.safe_load(case.read_text())["spec"]
    policy, errors, _ = spec_to_policy(spec["policy"])
    assert policy is not None, errors
    acts = [activation(item[item["type"]]) for item in spec["inputs"]]
    return policy, [a for a in acts if a is not None] + extra


def case_policies(case: Path) -> tuple[dict[str, Any], list[Policy]]:
    """A conformance case's document and its policy (``spec.policy`` as an ActivityPolicy named
    after the case), parsed as the loader parses a file."""
    doc = yaml.safe_load(case.read_text())
    policy = {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "ActivityPolicy",
        "metadata": {"name": doc["metadata"]["name"]},
        "spec": doc["spec"]["policy"],
    }
    return doc, parse_policy_text(yaml.safe_dump(policy), case.name)
