"""Where the translator's records go: counted from routing fields, or decoded and evaluated.

Translates the standard corpus with the bundled policies through the worker's translator
(native when built) and prints the outcome counts beside how many audit records were fully
decoded and evaluated (:meth:`processor.engine.Engine.translate_audit` calls), then the
translate rate (process CPU, best and median of ``--repeat``). Not a test: run it as

    python tests/bench/translate_mix.py [--count 30000] [--seed 1] [--repeat 5] [--mix production]
"""

from __future__ import annotations

import argparse
import statistics
import time

import orjson

from processor.bench.corpus import generate
from processor.bench.corpus.vocab import MIXES
from processor.policy.bundled import bundled_policy_dir
from processor.policy.compile import compile_set
from processor.translate import Output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mix", choices=sorted(MIXES), default="standard")
    args = parser.parse_args()
    compiled = compile_set([str(bundled_policy_dir())], {}, stages=None, max_record_bytes=10 << 20)
    translator, engine = compiled.translator, compiled.translator.engine
    payloads = [orjson.dumps(r) for r in generate(args.count, args.seed, mix=args.mix)]

    evaluated = 0
    translate_audit = engine.translate_audit

    def counting(audit: dict, *, dispatch: bool = False):  # type: ignore[no-untyped-def]
        nonlocal evaluated
        evaluated += 1
        return translate_audit(audit, dispatch=dispatch)

    engine.translate_audit = counting  # type: ignore[method-assign]
    out = Output()
    for payload in payloads:
        translator.translate(payload, out, None)
    engine.translate_audit = translate_audit  # type: ignore[method-assign]
    print(
        f"{translator.implementation}: {out.records:,} records, {len(out.activities):,} "
        f"activities, {out.no_match:,} no match, {out.skipped:,} skipped, {out.errors:,} errors; "
        f"{evaluated:,} audit records decoded and evaluated"
    )
    rates = []
    for _ in range(args.repeat):
        run = Output()
        started = time.process_time()
        for payload in payloads:
            translator.translate(payload, run, None)
        rates.append(len(payloads) / (time.process_time() - started))
    print(f"translate: {max(rates):,.0f} records/s best, {statistics.median(rates):,.0f} median")


if __name__ == "__main__":
    main()
