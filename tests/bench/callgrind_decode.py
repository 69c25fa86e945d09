"""Instructions of the decode of the records a policy wants, counted by callgrind, per decoder.

The records are those the fast path decodes (generated corpus, ``activity bench``'s default
policies: their route says a rule may match); each is decoded by one of:

- ``ceiling``: ``orjson.loads`` of the record (the target: a wanted record costs no more);
- ``split``: the decoder before the typed decode -- ``split_object``, ``orjson.loads`` of the
  routing members (the probe) and of the small members, ``decode_audit``, the bodies pruned
  (:func:`processor.records.lazy.decode_audit_split`);
- ``typed``: :func:`processor.records.typed.decode_audit_typed` (the fast path's decoder),
  without the scanner's body spans (as for an EventList item).

Run under callgrind with instrumentation off at start (the script switches it on around the
loop, as ``callgrind_translate.py`` does)::

    valgrind --tool=callgrind --instr-atstart=no \\
        python tests/bench/callgrind_decode.py --decoder typed --mix standard --count 1000

The loop's ``Collected`` count, less that of ``--decoder none`` (the switching itself), divided by
the ``wanted`` count printed is the figure per record.
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
from processor.records.lazy import decode_audit_split
from processor.translate import _ROUTE, _SPLIT


def instrument(flag: str) -> None:
    """Switch callgrind's instrumentation of this process ``on`` or ``off``."""
    subprocess.run(["callgrind_control", "-i", flag, str(os.getpid())], check=True)
    time.sleep(0.5)  # the tool picks the command up at its next poll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder", choices=["none", "ceiling", "split", "typed"], default="typed")
    parser.add_argument("--impl", choices=["native", "python"], default="native")
    parser.add_argument("--mix", default="standard", choices=["standard", "production"])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    impl = native() if args.impl == "native" else twin()
    engine = load_engine(default_policy_paths(), impl=impl)
    route = impl.route
    wanted: list[tuple[bytes, dict]] = []
    for record in generate(args.count, seed=args.seed, mix=args.mix):
        buf = orjson.dumps(record)
        routed = route.split_routed(buf, _SPLIT, _ROUTE, {}, {})
        if routed is None or routed[3] is None:
            continue
        doc = route.unpack_document(routed[3])
        if doc.api_version != "audit.k8s.io/v1":
            continue
        key = route.unpack(doc.route)
        if key.index_key is None or engine.audit_skip_reason(key.stage, key.index_key):
            continue
        if engine.audit_selects_nothing(key.index_key, key.verb, key.subresource, key.actor):
            continue
        wanted.append((buf, engine.audit_needs(key.index_key)))
    scan, decode, typed = impl.jsonscan, impl.audit.decode_audit, impl.typed.decode_audit_typed
    loads = orjson.loads
    instrument("on")
    if args.decoder == "none":  # the toggling's own count, to subtract
        pass
    elif args.decoder == "ceiling":
        for buf, _needs in wanted:
            loads(buf)
    elif args.decoder == "split":
        for buf, needs in wanted:
            text, spans, route_text = scan.split_object(buf, 0, len(buf), _SPLIT, _ROUTE)
            loads(route_text)
            decode_audit_split(buf, loads(text), spans, needs, scan, decode)
    else:
        for buf, needs in wanted:
            typed(buf, 0, len(buf), needs)
    instrument("off")
    size = sum(len(buf) for buf, _ in wanted) // max(1, len(wanted))
    print(f"wanted={len(wanted)} mean_bytes={size}", file=sys.stderr)


if __name__ == "__main__":
    main()
