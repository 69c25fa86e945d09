"""How often the native CEL plans call back into the twin's Python runtime on the translate path.

``_native/plan.pyx`` evaluates the node kinds policies use in C and delegates the rare ones to
helpers of :mod:`processor.cel.values`, :mod:`processor.cel.functions` and
:mod:`processor.cel.format` (its docstring lists them). This script wraps each of those helpers
with a counter *before* the extension is imported (it binds them at import), runs the native
fast path over the seeded corpus with ``activity bench``'s default policies, and prints the calls
per helper: the delegations on the hot path::

    python tests/bench/plan_delegations.py --mix standard --count 20000
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from processor.cel import format as cel_format
from processor.cel import functions, values

CALLS: Counter[str] = Counter()


def counted(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        CALLS[name] += 1
        return fn(*args)

    return wrapper


def wrap_helpers() -> None:
    for name in ("add", "sub", "mul", "div", "mod", "neg", "map_get", "map_has", "type_name"):
        setattr(values, name, counted(f"values.{name}", getattr(values, name)))
    cel_format.go_float = counted("format.go_float", cel_format.go_float)
    for name, fn in list(functions.FUNCTIONS.items()):
        if fn.impl is not None:
            impl = counted(f"functions.{name}", fn.impl)
            functions.FUNCTIONS[name] = dataclasses.replace(fn, impl=impl)
    functions.compile_regex = counted("functions.compile_regex", functions.compile_regex)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", default="standard", choices=["standard", "production"])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    wrap_helpers()
    import processor._native.plan  # noqa: F401  (binds the wrapped helpers)
    from processor.bench.harness import default_policy_paths, generate_lines
    from processor.native import native
    from processor.policy.compile import load_engine
    from processor.translate import Output, Translator

    lines = generate_lines(args.count, args.seed, args.mix)
    translator = Translator(load_engine(default_policy_paths(), impl=native()))
    CALLS.clear()  # not the compile
    out = Output()
    for line in lines:
        translator.translate(line, out)
    print(f"records={out.records} activities={len(out.activities)} ({args.mix} mix)")
    for name, calls in sorted(CALLS.items()):
        print(f"{name:32} {calls:>9,}")
    if not CALLS:
        print("no call into the twin's runtime")


if __name__ == "__main__":
    main()
