"""``activity preview``: manifests, quick mode, output formats and error reporting."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from processor.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "preview-deployment.yaml"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _located(line: str, file: Path) -> str:
    """``line`` without its ``FILE:LINE:COL: `` prefix, which must name ``file`` and a line."""
    head, line_no, column, rest = line.split(":", 3)
    assert head == str(file) and line_no.isdigit() and column.isdigit(), line
    return rest.removeprefix(" ")


def test_example_manifest_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "preview", "-f", str(EXAMPLE), "-o", "json")
    assert code == 0, err
    status = orjson.loads(out)["status"]
    assert [r["matchedRuleName"] for r in status["results"]] == ["create", "scale", "scaled"]
    summaries = [a["spec"]["summary"] for a in status["activities"]]
    assert summaries == [
        "alice@example.com created deployment web",
        "bob scaled web to 5 replicas",
        "web: Scaled up replica set web-7d9 to 5",
    ]
    links = status["activities"][0]["spec"]["links"]
    assert [link["resource"]["kind"] for link in links] == ["user", "Deployment"]


def test_yaml_keeps_the_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "preview", "-f", str(EXAMPLE), "-o", "yaml")
    assert code == 0
    doc = yaml.safe_load(out)
    assert doc["kind"] == "PolicyPreview" and doc["metadata"]["name"] == "deployments-preview"
    assert len(doc["spec"]["inputs"]) == 3 and len(doc["status"]["results"]) == 3


@pytest.mark.parametrize("output", [None, "table", "wide", "text"])
def test_human_output_is_the_default(
    output: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "preview", "-f", str(EXAMPLE), *(["-o", output] if output else []))
    assert code == 0
    assert out.splitlines()[0] == (
        "input 0: matched audit rule 0 (create): alice@example.com created deployment web"
    )


def test_invalid_policy_exits_1_with_field_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["policy"]["auditRules"][2]["match"] = "audit.verb"
    doc["spec"]["policy"]["eventRules"][0]["name"] = "Scaled"
    del doc["spec"]["inputs"][1]["audit"]
    target = tmp_path / "bad.yaml"
    target.write_text(yaml.safe_dump(doc))
    code, out, err = _run(capsys, "preview", "-f", str(target))
    assert code == 1 and out == ""
    lines = [_located(line, target) for line in err.splitlines()]
    assert lines[0].startswith("spec.policy.auditRules[2].match: Invalid value")
    assert "must return a boolean, got dyn" in lines[0]
    assert lines[1].startswith("spec.policy.eventRules[0].name: Invalid value")
    assert lines[2] == "spec.inputs[1].audit: Required value: provide the audit log data to test"


def test_per_input_errors_do_not_fail_the_preview(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["inputs"][1]["audit"].pop("requestObject")
    doc["spec"]["inputs"][0]["audit"]["verb"] = 7  # wrong type: the input cannot be decoded
    target = tmp_path / "errors.yaml"
    target.write_text(yaml.safe_dump(doc))
    code, out, _ = _run(capsys, "preview", "-f", str(target), "-o", "json")
    assert code == 0
    results = orjson.loads(out)["status"]["results"]
    assert "invalid audit input" in results[0]["error"]
    assert results[1]["error"].startswith("failed to evaluate rule 1 summary: ")
    # requestObject defaults to {} (docs/design.md#policy-engine-2-3)
    assert "no such key: requestObject" not in results[1]["error"]
    assert "no such key: spec" in results[1]["error"]
    assert results[1]["matched"] is False and results[1]["matchedRuleIndex"] == -1


def test_autofetch_and_missing_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["inputs"] = []
    target = tmp_path / "none.yaml"
    target.write_text(yaml.safe_dump(doc))
    assert _located(_run(capsys, "preview", "-f", str(target))[2].strip(), target) == (
        "spec: Required value: provide either 'inputs' or 'autoFetch'"
    )
    doc["spec"]["autoFetch"] = {"limit": 100, "sources": "logs", "timeRange": "1.5h"}
    target.write_text(yaml.safe_dump(doc))
    code, _, err = _run(capsys, "preview", "-f", str(target))
    assert code == 1
    assert [_located(line, target) for line in err.strip().splitlines()] == [
        "spec.autoFetch.limit: Invalid value: 100: must be <= 50",
        'spec.autoFetch.timeRange: Invalid value: "1.5h": must be a valid relative time '
        "(e.g., '1h', '24h', '7d')",
        'spec.autoFetch.sources: Unsupported value: "logs": supported values: "audit", '
        '"events", "both"',
    ]
    doc["spec"]["autoFetch"] = {"limit": 10}
    target.write_text(yaml.safe_dump(doc))
    missing = tmp_path / "no-store"
    code, _, err = _run(
        capsys, "preview", "-f", str(target), "--clickhouse-url", f"chdb://{missing}"
    )
    assert code == 1 and "no store at" in err and not missing.exists()


def test_quick_mode_policy_and_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    policy = {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "ActivityPolicy",
        "metadata": {"name": "deployments"},
        "spec": doc["spec"]["policy"],
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(policy))
    records = [i["audit"] if i["type"] == "audit" else i["event"] for i in doc["spec"]["inputs"]]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    code, out, err = _run(
        capsys,
        "preview",
        "--policy",
        str(tmp_path / "p.yaml"),
        "--input",
        str(tmp_path / "in.jsonl"),
        "-o",
        "json",
    )
    assert code == 0, err
    status = orjson.loads(out)["status"]
    assert [r["matchedRuleType"] for r in status["results"]] == ["audit", "audit", "event"]
    # an EventList is split into its items
    event_list = {"apiVersion": "audit.k8s.io/v1", "kind": "EventList", "items": records[:2]}
    (tmp_path / "list.json").write_bytes(orjson.dumps(event_list))
    code, out, _ = _run(
        capsys,
        "preview",
        "--policy",
        str(tmp_path / "p.yaml"),
        "--input",
        str(tmp_path / "list.json"),
        "-o",
        "json",
    )
    assert code == 0 and len(orjson.loads(out)["status"]["results"]) == 2


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "preview")[0] == 2
    assert _run(capsys, "preview", "-f", str(EXAMPLE), "--policy", "x")[0] == 2
    code, _, err = _run(capsys, "preview", "-f", "/nonexistent/file.yaml")
    assert code == 1 and "cannot read" in err


def _quick_files(tmp_path: Path) -> tuple[Path, Path]:
    """The example's policy as an ActivityPolicy file, and its inputs as JSON lines."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    policy = {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "ActivityPolicy",
        "metadata": {"name": "deployments"},
        "spec": doc["spec"]["policy"],
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(policy, sort_keys=False, width=1000))
    records = [i["audit"] if i["type"] == "audit" else i["event"] for i in doc["spec"]["inputs"]]
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    return tmp_path / "p.yaml", tmp_path / "in.jsonl"


def test_unreadable_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, records = _quick_files(tmp_path)
    missing = tmp_path / "nope.yaml"
    for argv in (["--policy", str(missing), "--input", str(records)],
                 ["--policy", str(policy), "--input", str(missing)],
                 ["-f", str(missing)]):  # fmt: skip
        code, _, err = _run(capsys, "preview", *argv)
        assert (code, err) == (1, f"{missing}: cannot read file: No such file or directory\n")


def test_yaml_syntax_errors_are_located(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: x\nkind: ActivityPolicy\nspec:\n  resource: [a, b\n  x: }\n")
    _, records = _quick_files(tmp_path)
    for argv in (["--policy", str(bad), "--input", str(records)], ["-f", str(bad)]):
        code, _, err = _run(capsys, "preview", *argv)
        assert code == 1 and err.startswith(f"{bad}:5:4: invalid YAML: "), err


def test_policy_errors_are_located_in_the_policy_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, records = _quick_files(tmp_path)
    lines = policy.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if "match:" in line)
    lines[number - 1] = lines[number - 1].split("match:")[0] + "match: audit.verb"
    policy.write_text("\n".join(lines) + "\n")
    code, _, err = _run(capsys, "preview", "--policy", str(policy), "--input", str(records))
    assert code == 1
    assert err.startswith(f"{policy}:{number}:"), err  # the line in the user's file
    assert ": spec.auditRules[0].match: Invalid value" in err  # the path in the user's file


def test_a_bad_input_line_is_reported_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, records = _quick_files(tmp_path)
    good = records.read_text().splitlines()
    records.write_text("\n".join([good[0], "", good[1], '{"kind": "Event",, }', good[2]]) + "\n")
    code, _, err = _run(capsys, "preview", "--policy", str(policy), "--input", str(records))
    assert code == 1
    assert err.startswith(f"{records}:4:18: line 4 is not JSON ("), err  # the second comma
    yaml_input = tmp_path / "in.yaml"
    yaml_input.write_text("kind: Event\nreason: [Scaled\nmessage: }\n")
    code, _, err = _run(capsys, "preview", "--policy", str(policy), "--input", str(yaml_input))
    assert code == 1 and err.startswith(f"{yaml_input}:3:8: invalid YAML: "), err


def test_a_whole_policy_under_spec_policy_says_what_to_move(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["policy"] = {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "ActivityPolicy",
        "metadata": {"name": "deployments"},
        "spec": doc["spec"]["policy"],
    }
    target = tmp_path / "whole.yaml"
    target.write_text(yaml.safe_dump(doc))
    code, _, err = _run(capsys, "preview", "-f", str(target))
    assert code == 1
    assert _located(err.strip(), target) == (
        "spec.policy: Invalid value: spec.policy holds the policy's spec (resource, auditRules, "
        "eventRules), not a whole ActivityPolicy; move its spec up (drop its apiVersion, kind "
        "and metadata)"
    )
    assert "resource.kind" not in err


def test_skipped_inputs_say_why_and_all_stages_evaluates_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["spec"]["inputs"][0]["audit"]["stage"] = "RequestReceived"
    target = tmp_path / "stages.yaml"
    target.write_text(yaml.safe_dump(doc))
    code, out, _ = _run(capsys, "preview", "-f", str(target))
    assert code == 0
    assert out.splitlines()[0] == "input 0: skipped: stage RequestReceived"
    assert out.splitlines()[1].startswith("input 1: matched audit rule 1 (scale)")
    code, out, _ = _run(capsys, "preview", "-f", str(target), "-o", "json")
    assert orjson.loads(out)["status"]["results"][0]["skipped"] == "stage RequestReceived"
    code, out, _ = _run(capsys, "preview", "-f", str(target), "--all-stages")
    assert code == 0
    assert out.splitlines()[0] == (
        "input 0: matched audit rule 0 (create): alice@example.com created deployment web"
    )
    assert _run(capsys, "preview", "--help")[1].count("--all-stages") == 2  # usage and option


def test_filename_names_the_policy_with_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, records = _quick_files(tmp_path)
    outputs = []
    for flag in ("-f", "--filename", "--policy"):
        code, out, err = _run(capsys, "preview", flag, str(policy), "--input", str(records))
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0].splitlines()[0].startswith("input 0: matched audit rule 0 (create)")
    code, _, err = _run(capsys, "preview", "--policy", str(policy))
    assert (code, err) == (
        2,
        "activity preview: --policy needs --input with the records to test, or --auto-fetch\n",
    )
    code, _, err = _run(capsys, "preview", "--input", str(records))
    assert code == 2 and "-f POLICY --input RECORDS" in err
