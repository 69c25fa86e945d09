"""Every conformance case of ``../shared/conformance/cases`` through ``activity preview -f``.

A case is a PolicyPreview manifest plus an ``expected`` key; the manifest (minus ``expected``) is
fed to the command line and its JSON output compared as the cases' README says: results key by
key (``errorContains`` as a substring, no error where none is expected), activities as recursive
subsets with lists of equal length and an absent list equal to an empty one. Each case runs with
the preview's CEL plans compiled by the twin (``processor/cel/plan.py``) and by the native unit
(``processor._native.plan``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from processor.cel import program
from processor.cli import main
from processor.native import Implementation
from tests.conftest import shared_files
from tests.unit.parity import IMPLEMENTATIONS, implementation, use_plans

#: The case files; one ``shared_missing`` placeholder when the corpus is absent (skip, or fail
#: under ``PROCESSOR_REQUIRE_SHARED=1``).
CASES = shared_files("conformance", "cases", ids=lambda path: path.stem)


def subset_mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` does not contain ``expected`` (the conformance comparison rules)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected a mapping, got {actual!r}"]
        out: list[str] = []
        for key, value in expected.items():
            out += subset_mismatches(value, actual.get(key), f"{path}.{key}")
        return out
    if isinstance(expected, list):
        actual = [] if actual is None else actual
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {len(expected)} items, got {actual!r}"]
        return [
            m
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for m in subset_mismatches(e, a, f"{path}[{i}]")
        ]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


def compare_case(expected: dict[str, Any], status: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    results = status.get("results") or []
    if len(results) != len(expected["results"]):
        return [f"results: expected {len(expected['results'])}, got {results!r}"]
    for i, (want, got) in enumerate(zip(expected["results"], results, strict=True)):
        for key, value in want.items():
            if key == "errorContains":
                if value not in (got.get("error") or ""):
                    problems.append(f"results[{i}].error {got.get('error')!r} lacks {value!r}")
            elif got.get(key) != value:
                problems.append(f"results[{i}].{key}: expected {value!r}, got {got.get(key)!r}")
        if "errorContains" not in want and got.get("error"):
            problems.append(f"results[{i}]: unexpected error {got['error']!r}")
    problems += subset_mismatches(
        expected.get("activities") or [], status.get("activities"), "activities"
    )
    return problems


def _manifest_file(case: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = yaml.safe_load(case.read_text())
    expected = data.pop("expected")
    target = tmp_path / case.name
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target, expected


def test_cases_are_present(conformance_cases_dir: Path) -> None:
    found = list(conformance_cases_dir.glob("*.yaml"))
    assert len(found) >= 20, f"conformance cases missing under {conformance_cases_dir}"


@pytest.fixture(params=IMPLEMENTATIONS)
def plans(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Implementation:
    """The preview's CEL plans compiled by the twin, then by the native unit."""
    impl = implementation(request.param)
    use_plans(monkeypatch, impl)
    return impl


@pytest.mark.parametrize("case", CASES)
def test_conformance_case(
    case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], plans: Implementation
) -> None:
    manifest, expected = _manifest_file(case, tmp_path)
    assert main(["preview", "-f", str(manifest), "-o", "json"]) == 0
    output = orjson.loads(capsys.readouterr().out)
    assert output["kind"] == "PolicyPreview"
    assert compare_case(expected, output["status"]) == []
    compiled = [p for p in program._CACHE.values() if isinstance(p, program.Program)]
    native = plans.name == "native"
    assert compiled and all(
        (type(p._plan).__module__ == "processor._native.plan") == native for p in compiled
    )


def test_console_script_runs_a_case(conformance_cases_dir: Path, tmp_path: Path) -> None:
    """The installed ``activity`` entry point (a real process) gives the same result."""
    first = min(conformance_cases_dir.glob("*.yaml"))
    manifest, expected = _manifest_file(first, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "processor", "preview", "-f", str(manifest), "-o", "json"],
        capture_output=True,
        check=False,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert compare_case(expected, orjson.loads(proc.stdout)["status"]) == []


def test_comparator_catches_differences() -> None:
    expected = {
        "results": [{"inputIndex": 0, "matched": True}],
        "activities": [{"spec": {"summary": "a", "links": []}}],
    }
    good = {
        "results": [{"inputIndex": 0, "matched": True}],
        "activities": [{"spec": {"summary": "a"}, "kind": "Activity"}],
    }
    assert compare_case(expected, good) == []
    bad = {
        "results": [{"inputIndex": 0, "matched": False, "error": "x"}],
        "activities": [{"spec": {"summary": "b", "links": [{}]}}],
    }
    assert len(compare_case(expected, bad)) == 4
