"""Instructions per Activity of the builder and the pipeline's use of it, counted by callgrind.

The loop does per matched record what the engine and the pipeline do with an Activity: build it,
take its JSON bytes, its NATS subject, its name and its metric labels (apiGroup, kind). The
builder calls are recorded first, translating a generated corpus with ``activity bench``'s
default policies (not counted); callgrind counts only the loop (instrumentation switched on just
before it, as in ``callgrind_translate.py``)::

    valgrind --tool=callgrind --instr-atstart=no \\
        python tests/bench/callgrind_build.py --path native --mix standard --count 3000

Divide valgrind's ``Collected`` by the ``activities`` printed. ``--path`` is ``native``
(``processor._native.activity``) or ``python`` (the twin). A builder that returns the Activity as
a dict (the project before the byte builder) is measured too: then the bytes are
``orjson.dumps`` and the subject and name are read from the dict, as the pipeline did.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
from callgrind_translate import instrument  # this folder (run as a script)

from processor.bench.corpus import generate
from processor.bench.harness import default_policy_paths
from processor.native import native, twin
from processor.policy.compile import load_engine
from processor.subjects import activity_subject
from processor.translate import Output, Translator


def record_calls(engine: Any, lines: list[bytes]) -> list[tuple[Any, tuple[Any, ...]]]:
    """The builder calls ``engine`` makes for ``lines``: ``(builder, args)``."""
    calls: list[tuple[Any, tuple[Any, ...]]] = []
    audit, event = engine._build_audit, engine._build_event

    def on_audit(*args: Any) -> Any:
        calls.append((audit, args))
        return audit(*args)

    def on_event(*args: Any) -> Any:
        calls.append((event, args))
        return event(*args)

    engine._build_audit, engine._build_event = on_audit, on_event
    Translator(engine).translate_many(lines, Output())
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default="native", choices=["native", "python"])
    parser.add_argument("--mix", default="standard", choices=["standard", "production"])
    parser.add_argument("--count", type=int, default=3000, help="records generated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    impl = native() if args.path == "native" else twin()
    engine = load_engine(default_policy_paths(), impl=impl)
    lines = [orjson.dumps(r) for r in generate(args.count, seed=args.seed, mix=args.mix)]
    calls = record_calls(engine, lines)
    prefix = "activities"
    sink: list[Any] = []
    keep = sink.append
    dumps = orjson.dumps
    probe = calls[0][0](*calls[0][1])
    instrument("on")
    if type(probe) is dict:  # the dict builder: the pipeline encoded it and read the dict
        for build, call in calls:
            a = build(*call)
            resource = a["spec"]["resource"]
            keep((dumps(a), activity_subject(a, prefix), a["metadata"]["name"],
                  resource.get("apiGroup", ""), resource.get("kind", "")))  # fmt: skip
    else:
        for build, call in calls:
            b = build(*call)
            keep((b.data, activity_subject(b, prefix), b.name, b.api_group, b.kind))
    instrument("off")
    print(f"activities={len(calls)} bytes={sum(len(x[0]) for x in sink)}", file=sys.stderr)


if __name__ == "__main__":
    main()
