"""``activity bench``: the per-record paths side by side, in one process, on one corpus.

Measured in this order, each on the same in-memory corpus of JSON lines:

1. ``naive`` -- cel-python's interpreted runner on ``json_to_cel`` records
   (:mod:`processor.bench.naive`), on a sample of the corpus (it runs at tens of records/s);
2. ``ceiling`` -- ``orjson.loads`` of every line and nothing else: the upper bound of any design
   that decodes whole records;
3. ``python`` -- :class:`processor.translate.Translator` on the pure-Python twins;
4. ``native`` -- the same on the Cython extensions (absent when they are not built).

Paths 2-4 run ``repeat`` times, interleaved, and the median is reported; the translated results of
3 and 4 are compared (counts, activities and dead letters must be identical). Rates are records per
second of process CPU time (``time.process_time``: robust on a shared machine). The objects loaded
before measuring (policies, parser tables and the corpus itself, which a worker does not hold)
are moved out of the garbage collector's way with ``gc.freeze()`` while timing
(``processor.service.frozen_heap``; thawed again afterwards).
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from processor.native import describe, twin, use_native
from processor.native import native as native_impl
from processor.service import frozen_heap
from processor.translate import Output, Translator

__all__ = [
    "BenchResult",
    "default_policy_paths",
    "format_table",
    "generate_lines",
    "run_bench",
]

REPO = Path(__file__).resolve().parents[2]


def default_policy_paths() -> list[str]:
    """Every YAML under the project's ``policies/`` plus ``../shared/real-policies/*.yaml``,
    leaving out a corpus file whose policy names a bundled policy already has (a policy set
    holds each name once; the corpus copies the bundled examples)."""
    from processor.policy import load_paths

    paths = sorted(str(p) for p in (REPO / "policies").rglob("*.yaml"))
    names = {p.name for p in load_paths(paths).policies}
    for path in sorted((REPO.parent / "shared" / "real-policies").glob("*.yaml")):
        loaded = load_paths([path])
        if not loaded.policies or not {p.name for p in loaded.policies} & names:
            paths.append(str(path))
    return paths


def generate_lines(count: int, seed: int, mix: str = "standard") -> list[bytes]:
    """The seeded corpus (:mod:`processor.bench.corpus`), one record per line, in memory."""
    from processor.bench.corpus import generate

    dumps = orjson.dumps
    return [dumps(record) for record in generate(count, seed=seed, mix=mix)]


@dataclass
class PathResult:
    """One measured path: records/s (median), every run, and the peak RSS after it."""

    name: str
    label: str
    records_per_s: float
    runs: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    note: str = ""


@dataclass
class BenchResult:
    """What ``activity bench`` prints (``--json`` gives :meth:`as_dict`)."""

    records: int
    lines: int
    bytes: int
    policies: int
    implementation: str
    paths: list[PathResult]
    counts: dict[str, int]
    identical: bool | None

    def rate(self, name: str) -> float | None:
        for p in self.paths:
            if p.name == name:
                return p.records_per_s
        return None

    def ratios(self) -> dict[str, float]:
        """native/ceiling, native/naive, native/python (when measured)."""
        out: dict[str, float] = {}
        native = self.rate("native")
        for base in ("ceiling", "naive", "python"):
            other = self.rate(base)
            if native and other:
                out[f"native/{base}"] = native / other
        return out

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratios"] = self.ratios()
        return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    started = time.process_time()
    fn()
    return time.process_time() - started


def _translate_all(translator: Translator, lines: Sequence[bytes]) -> Output:
    out = Output()
    translate = translator.translate
    for line in lines:
        translate(line, out)
        if len(out.activities) > 1000:  # bounded memory, as a sink would drain it
            out.clear()
    return out


def _outcome(translator: Translator, lines: Sequence[bytes]) -> tuple[dict[str, int], bytes]:
    """Counts and a digest-able dump of every result (timestamps that use the clock removed)."""
    out = Output()
    for line in lines:
        translator.translate(line, out)
    counts = {
        "records": out.records,
        "activities": len(out.activities),
        "no_match": out.no_match,
        "skipped": out.skipped,
        "errors": out.errors,
        "dead_letters": len(out.dead_letters),
    }
    for d in out.dead_letters:
        d.pop("timestamp", None)
    activities = [orjson.Fragment(a.data) for a in out.activities]
    return counts, orjson.dumps([activities, out.dead_letters])


def run_bench(
    lines: Sequence[bytes],
    policy_paths: Sequence[str],
    *,
    repeat: int = 3,
    naive_sample: int = 200,
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    """Measure the four paths on ``lines`` with the policies of ``policy_paths``."""
    from processor.bench.naive import NaiveRunner
    from processor.policy.compile import load_engine

    say = progress or (lambda _msg: None)
    python = Translator(load_engine(list(policy_paths), impl=twin()))
    native = None
    if use_native():
        native = Translator(load_engine(list(policy_paths), impl=native_impl()))
    say("checking that both paths give the same results")
    counts, py_dump = _outcome(python, lines)
    identical = None if native is None else _outcome(native, lines) == (counts, py_dump)
    records = counts["records"]
    with frozen_heap():
        results = {
            "ceiling": PathResult("ceiling", "orjson.loads of every record, nothing else", 0.0),
            "python": PathResult("python", "pure-Python path (twins, same fast path)", 0.0),
        }
        if native is not None:
            results["native"] = PathResult("native", "native path (Cython extensions)", 0.0)
        loads = orjson.loads
        runs: dict[str, Callable[[], Any]] = {
            "ceiling": lambda: [loads(line) and None for line in lines],
            "python": lambda: _translate_all(python, lines),
        }
        if native is not None:
            runs["native"] = lambda: _translate_all(native, lines)
        for i in range(repeat):
            for name, fn in runs.items():
                say(f"run {i + 1}/{repeat}: {name}")
                seconds = _timed(fn)
                results[name].runs.append(records / seconds if seconds > 0 else 0.0)
                results[name].peak_rss_mb = _peak_rss_mb()
        for r in results.values():
            r.records_per_s = statistics.median(r.runs)

        sample = list(lines[: max(1, naive_sample)])
        say(f"naive cel-python baseline on {len(sample)} lines")
        sample_records = _outcome(python, sample)[0]["records"]
        seconds = _timed(lambda: NaiveRunner(python.engine).seconds(sample))
        naive = PathResult(
            "naive",
            "naive: cel-python runner on json_to_cel records",
            sample_records / seconds if seconds > 0 else 0.0,
            note=f"sample of the first {sample_records} records",
            peak_rss_mb=_peak_rss_mb(),
        )
    return BenchResult(
        records=records,
        lines=len(lines),
        bytes=sum(len(line) for line in lines),
        policies=len(python.engine.policies),
        implementation=describe(),
        paths=[naive, *results.values()],
        counts=counts,
        identical=identical,
    )


def format_table(result: BenchResult) -> str:
    """The human-readable table."""
    lines = [
        f"corpus: {result.records} records in {result.lines} lines, "
        f"{result.bytes / 1e6:.1f} MB; policies: {result.policies}; "
        f"implementation: {result.implementation}",
        "",
        f"{'path':<52} {'records/s':>12} {'runs':>24}  peak RSS",
    ]
    for p in result.paths:
        runs = ", ".join(f"{r:,.0f}" for r in p.runs) if p.runs else p.note
        lines.append(f"{p.label:<52} {p.records_per_s:>12,.0f} {runs:>24}  {p.peak_rss_mb:,.0f} MB")
    lines.append("")
    for name, ratio in result.ratios().items():
        lines.append(f"{name:<16} {ratio:8.2f}x")
    if result.identical is not None:
        lines.append(f"python and native results identical: {'yes' if result.identical else 'NO'}")
    lines.append("counts: " + " ".join(f"{k}={v}" for k, v in result.counts.items()))
    return "\n".join(lines)
