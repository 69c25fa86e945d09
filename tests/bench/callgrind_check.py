"""Instructions of the scanner's validation alone, counted by callgrind: ``check_value`` of each
generated record (the whole record, one container) in one form of stage 1.

Run it under callgrind with instrumentation off at start; the script switches it on just around
the loop (see ``callgrind_translate.py``)::

    valgrind --tool=callgrind --instr-atstart=no \\
        python tests/bench/callgrind_check.py --level 2 --mix standard --count 1000

``--level`` is the form (``jsonscan.check_levels()``: 2 AVX2, 1 SSE2, 0 the byte loop). The
average record size is printed, so the count divides into instructions per byte.
"""

from __future__ import annotations

import argparse
import sys

import orjson
from callgrind_translate import WARM, instrument  # this folder (run as a script)

from processor.bench.corpus import generate
from processor.native import native


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=2)
    parser.add_argument("--mix", default="standard", choices=["standard", "production"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    lines = [orjson.dumps(r) for r in generate(args.count + WARM, seed=args.seed, mix=args.mix)]
    lines = lines[WARM:]
    check = native().jsonscan.check_value
    level = args.level
    instrument("on")
    accepted = sum(check(line, 0, 0, level) == len(line) for line in lines)
    instrument("off")
    size = sum(map(len, lines)) / len(lines)
    print(f"records={len(lines)} accepted={accepted} bytes/record={size:.0f}", file=sys.stderr)


if __name__ == "__main__":
    main()
