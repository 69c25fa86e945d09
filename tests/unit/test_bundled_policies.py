"""The bundled policies (``policies/``): lint-clean, and every preview fixture gives its summary.

Each ``tests/fixtures/policies/<policy>.yaml`` is a PolicyPreview manifest without ``spec.policy``
(``policyFile`` names the bundled file that fills it) plus ``expected``: one entry per input, either
``null`` (no activity) or ``{rule, summary}``. Every fixture runs twice: through the preview path
for its own policy, and through the :class:`Engine` loaded with every bundled policy (routing and
first-match across policies, as the worker runs them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from processor.engine import Engine
from processor.policy import load_policies
from processor.policy.bundled import bundled_policy_dir, bundled_policy_paths
from processor.policy.lint import lint_paths
from processor.preview import load_manifest, run_preview
from processor.translate import Output, Translator

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policies"
FIXTURE_FILES = sorted(FIXTURES.glob("*.yaml"))
NO_FALLBACK = "no fallback rule: "


def _fixture(path: Path) -> tuple[dict[str, Any], list[Any]]:
    data = yaml.safe_load(path.read_text())
    expected = data.pop("expected")
    policy_file = bundled_policy_dir() / data.pop("policyFile")
    policy = yaml.safe_load(policy_file.read_text())
    data["spec"]["policy"] = policy["spec"]
    assert len(expected) == len(data["spec"]["inputs"]), f"{path.name}: one expectation per input"
    return data, expected


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policies(bundled_policy_paths()))


def test_bundled_policy_paths() -> None:
    paths = bundled_policy_paths()
    assert bundled_policy_dir().name == "policies"
    assert len([p for p in paths if p.parent.name == "inventory"]) == 12
    assert len([p for p in paths if p.parent.name == "kubernetes"]) >= 17
    assert paths == sorted(paths)


def test_lint_has_no_errors_and_only_the_fallback_warning() -> None:
    report = lint_paths([bundled_policy_dir()])
    assert report.errors == []
    other = [w for w in report.warnings if not w.message.startswith(NO_FALLBACK)]
    assert other == [], [str(w) for w in other]
    for policy in report.policies:
        assert policy.audit_rules[-1].name == "fallback", policy.name


def test_lint_strict_has_no_warnings() -> None:
    assert lint_paths([bundled_policy_dir()]).warnings == []


def test_every_policy_has_a_fixture_covering_every_rule() -> None:
    covered: dict[str, set[str]] = {}
    for path in FIXTURE_FILES:
        data = yaml.safe_load(path.read_text())
        names = {e["rule"] for e in data["expected"] if e}
        covered.setdefault(data["policyFile"], set()).update(names)
    for path in bundled_policy_paths():
        key = path.relative_to(bundled_policy_dir()).as_posix()
        assert key in covered, f"no fixture for {key}"
        doc = yaml.safe_load(path.read_text())["spec"]
        rules = {r["name"] for r in doc.get("auditRules", []) + doc.get("eventRules", [])}
        assert rules - covered[key] == set(), f"{key}: rules without a fixture"


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture_through_preview(path: Path) -> None:
    manifest, expected = _fixture(path)
    text = orjson.dumps(manifest).decode()
    manifest, policy = load_manifest(text, str(path))
    status = run_preview(manifest, policy)["status"]
    activities = iter(status["activities"])
    got = []
    for result in status["results"]:
        assert "error" not in result, result
        if result["matched"]:
            summary = next(activities)["spec"]["summary"]
            got.append({"rule": result["matchedRuleName"], "summary": summary})
        else:
            got.append(None)
    assert got == expected


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture_through_engine(path: Path, engine: Engine) -> None:
    manifest, expected = _fixture(path)
    translator = Translator(engine)
    for i, (item, want) in enumerate(zip(manifest["spec"]["inputs"], expected, strict=True)):
        out = Output()
        translator.translate(orjson.dumps(item[item["type"]]), out, item["type"])
        assert out.dead_letters == [], (i, out.dead_letters)
        summaries = [a["spec"]["summary"] for a in out.activities]
        assert summaries == ([want["summary"]] if want else []), f"input {i}"


def test_secret_values_never_reach_a_summary(engine: Engine) -> None:
    manifest, _ = _fixture(FIXTURES / "core-secrets.yaml")
    translator = Translator(engine)
    out = Output()
    values: set[str] = set()
    for item in manifest["spec"]["inputs"]:
        audit = item["audit"]
        for body in (audit.get("requestObject"), audit.get("responseObject")):
            if isinstance(body, dict):
                for key in ("data", "stringData"):
                    values.update((body.get(key) or {}).values())
                    values.update((body.get(key) or {}).keys())
        translator.translate(orjson.dumps(audit), out, "audit")
    assert values and out.activities
    for activity in out.activities:
        assert not any(v in activity["spec"]["summary"] for v in values), activity["spec"]
