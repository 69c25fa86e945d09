"""CEL plan evaluation alone: the native plans against their twin, on the same expressions.

Every expression of ``activity bench``'s default policies (each rule's match and summary block)
is compiled by both plan units and evaluated on the activations of generated records of its rule
type (:func:`processor.bench.corpus.generate`): the plans called directly with the activation
(a summary block's with a link collector), without ``Program.evaluate`` around them. Prints
evaluations per second of CPU time, the best of three runs, and the ratio, separately for the
evaluations that give a value and those that end in a CEL error (a missing key: Python
exceptions in both units)::

    python tests/bench/plan_eval.py --count 2000 --mix standard

Every expression runs on every activation of its rule type, wanted by the policy's resource or
not: this measures the plans, not the translate path (``activity bench`` does that).

Instructions per evaluation, with callgrind counting one pass of one implementation over one
outcome (instrumentation switched on around it, as ``callgrind_translate.py`` does)::

    valgrind --tool=callgrind --instr-atstart=no \
        python tests/bench/plan_eval.py --count 300 --callgrind native value
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from processor.bench.corpus import generate
from processor.bench.harness import default_policy_paths
from processor.cel import AUDIT_ENV, EVENT_ENV
from processor.cel.plan import LINKS
from processor.cel.program import Program
from processor.errors import CelCompileError, CelEvalError
from processor.native import Implementation, native, twin
from processor.policy import load_paths
from processor.policy.template import find_blocks
from tests.unit.parity import activation

ENVS = {"audit": AUDIT_ENV, "event": EVENT_ENV}


def expressions() -> list[tuple[str, str, bool]]:
    """``(rule type, source, is a summary block)`` of every rule of the default policies."""
    out: dict[tuple[str, str, bool], None] = {}
    for policy in load_paths(default_policy_paths()).policies:
        for rule_type, rules in (("audit", policy.audit_rules), ("event", policy.event_rules)):
            for rule in rules:
                out[(rule_type, rule.match, False)] = None
                for block in find_blocks(rule.summary):
                    out[(rule_type, block.expression, True)] = None
    return list(out)


def programs(impl: Implementation, exprs: list[tuple[str, str, bool]]) -> list[tuple[Any, ...]]:
    out = []
    for rule_type, source, summary in exprs:
        try:
            out.append((rule_type, Program(source, ENVS[rule_type], impl), summary))
        except CelCompileError:
            continue
    return out


Pair = tuple[Any, dict[str, Any]]


def split(
    progs: list[tuple[Any, ...]], acts: dict[str, list[dict[str, Any]]]
) -> dict[str, list[Pair]]:
    """(plan, activation) pairs by outcome, ``value`` or ``error``; a summary block's activation
    carries a link collector, as ``Program.evaluate`` builds it."""
    out: dict[str, list[Pair]] = {"value": [], "error": []}
    for rule_type, program, summary in progs:
        for variables in acts[rule_type]:
            act = {**variables, LINKS: []} if summary else variables
            try:
                program._plan(act)
            except CelEvalError:
                out["error"].append((program._plan, act))
            else:
                out["value"].append((program._plan, act))
    return out


def run(pairs: list[Pair]) -> float:
    """CPU seconds to evaluate every pair."""
    start = time.process_time()
    for plan, act in pairs:
        try:  # noqa: SIM105  (contextlib.suppress would add a call per evaluation to the timing)
            plan(act)
        except CelEvalError:
            pass
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--mix", default="standard", choices=["standard", "production"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--callgrind",
        nargs=2,
        metavar=("IMPL", "OUTCOME"),
        help="under callgrind: count one pass of IMPL (native|python) over OUTCOME (value|error)",
    )
    args = parser.parse_args()
    exprs = expressions()
    acts: dict[str, list[dict[str, Any]]] = {"audit": [], "event": []}
    for record in generate(args.count, seed=args.seed, mix=args.mix):
        found = activation(record)
        if found is not None:
            acts[found[0]].append(found[1])
    print(
        f"{len(exprs)} expressions; activations: {len(acts['audit'])} audit, "
        f"{len(acts['event'])} event ({args.mix} mix, {args.count} records)"
    )
    if args.callgrind:
        from callgrind_translate import instrument  # the sibling script (this one's folder)

        impl_name, outcome = args.callgrind
        pairs = split(programs(native() if impl_name == "native" else twin(), exprs), acts)[outcome]
        instrument("on")
        run(pairs)
        instrument("off")
        print(f"{impl_name} {outcome}: {len(pairs):,} evaluations (divide callgrind's count)")
        return
    rates: dict[tuple[str, str], float] = {}
    for impl in (twin(), native()):
        for outcome, pairs in split(programs(impl, exprs), acts).items():
            best = min(run(pairs) for _ in range(3))
            rates[(impl.name, outcome)] = len(pairs) / best
            print(
                f"{impl.name:8} {outcome:6} {len(pairs):>9,} evaluations "
                f"{len(pairs) / best:>12,.0f} evaluations/s"
            )
    for outcome in ("value", "error"):
        ratio = rates[("native", outcome)] / rates[("python", outcome)]
        print(f"native/twin ({outcome}) {ratio:.1f}x")


if __name__ == "__main__":
    main()
