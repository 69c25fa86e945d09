"""Instructions of the per-record translate loop alone, counted by callgrind.

Run it under callgrind with instrumentation off at start; the script switches it on
(``callgrind_control -i on``) just before the loop and off after it, so the corpus generation and
the policy compile are not counted (the loop's ``Collected`` count is printed by valgrind)::

    valgrind --tool=callgrind --instr-atstart=no \\
        python tests/bench/callgrind_translate.py --path native --mix standard --count 1000

``--path`` is ``native`` (the fast path on the Cython extensions), ``python`` (the fast path on
the twins), ``reference`` (the reference path on the twins) or ``ceiling`` (``orjson.loads`` of
each record). The policies are ``activity bench``'s default set unless ``--policies`` names files.
The first 300 generated records warm the translator up and are not counted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import orjson

from processor.bench.corpus import generate
from processor.bench.harness import default_policy_paths
from processor.native import native, twin
from processor.policy.compile import load_engine
from processor.translate import Output, Translator

WARM = 300


def instrument(flag: str) -> None:
    """Switch callgrind's instrumentation of this process ``on`` or ``off``."""
    subprocess.run(["callgrind_control", "-i", flag, str(os.getpid())], check=True)
    time.sleep(0.5)  # the tool picks the command up at its next poll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=["native", "python", "reference", "ceiling"])
    parser.add_argument("--mix", default="standard", choices=["standard", "production"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policies", nargs="+", default=None)
    args = parser.parse_args()
    lines = [orjson.dumps(r) for r in generate(args.count + WARM, seed=args.seed, mix=args.mix)]
    warm, lines = lines[:WARM], lines[WARM:]
    if args.path == "ceiling":
        loads = orjson.loads
        instrument("on")
        for line in lines:
            loads(line)
        instrument("off")
        return
    impl = native() if args.path == "native" else twin()
    engine = load_engine(args.policies or default_policy_paths(), impl=impl)
    translator = Translator(engine, fast=args.path != "reference")
    translator.translate_many(warm, Output())
    out = Output()
    instrument("on")
    translator.translate_many(lines, out)
    instrument("off")
    print(
        f"records={out.records} activities={len(out.activities)} no_match={out.no_match} "
        f"skipped={out.skipped} errors={out.errors}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
