"""``activity lint`` and ``activity version``: warnings, report lines and exit codes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from processor import __version__, cli, native
from processor.policy.lint import lint_paths, normalise_expression
from tests.conftest import require_shared

HEADER = """\
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata:
  name: {name}
spec:
  resource:
    apiGroup: apps
    kind: Deployment
"""


def write_policy(path: Path, rules: str = "", name: str = "p") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ")
    path.write_text(HEADER.format(name=name) + body + "\n")
    return path


GOOD = """
auditRules:
- name: create
  match: "audit.verb == 'create'"
  summary: "{{ actor }} created {{ audit.objectRef.name }}"
- name: other
  match: "true"
  summary: "{{ actor }} changed {{ audit.objectRef.name }}"
"""


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_clean_policy_passes_silently(tmp_path, capsys):
    path = write_policy(tmp_path / "p.yaml", GOOD)
    code, lines, err = run(capsys, "lint", str(path))
    assert (code, lines) == (0, [])
    assert "1 file(s), 1 policy(ies): 0 error(s), 0 warning(s)" in err


def test_errors_exit_1_with_file_line_col_policy_path_and_message(tmp_path, capsys):
    path = write_policy(
        tmp_path / "p.yaml",
        """
        auditRules:
        - name: Bad_Name
          match: "audit.verb == 'create'"
          summary: s
        - name: fallback
          match: "true"
          summary: s
        """,
    )
    code, lines, _ = run(capsys, "lint", str(path))
    assert code == 1
    (line,) = lines
    assert line.startswith(f'{path}:10:5: p: spec.auditRules[0].name: Invalid value: "Bad_Name"')


def test_warnings_only_exit_0_and_are_marked(tmp_path, capsys):
    path = write_policy(tmp_path / "p.yaml", "")
    code, lines, _ = run(capsys, "lint", str(path))
    assert code == 0
    assert lines == [
        f"{path}:5:1: p: spec: warning: policy has no rules defined and will have no effect"
    ]


def test_strict_makes_warnings_fail(tmp_path, capsys):
    path = write_policy(tmp_path / "p.yaml", "")
    assert run(capsys, "lint", "--strict", str(path))[0] == 1


def test_rules_after_a_catch_all_can_never_match(tmp_path):
    write_policy(
        tmp_path / "p.yaml",
        """
        eventRules:
        - name: any
          match: " true "
          summary: s
        - name: later
          match: "event.reason == 'X'"
          summary: s
        """,
    )
    report = lint_paths([tmp_path])
    (warning,) = report.warnings
    assert warning.path == "spec.eventRules[1].match"
    assert "can never match" in warning.message and "spec.eventRules[0] (any)" in warning.message
    assert report.exit_code == 0


def test_duplicate_match_expressions_are_flagged(tmp_path):
    write_policy(
        tmp_path / "p.yaml",
        """
        auditRules:
        - name: a
          match: "audit.verb=='create' && 'a  b' in audit.x"
          summary: s
        - name: b
          match: "audit.verb  ==  'create'  &&  'a  b'  in  audit.x"
          summary: s
        - name: c
          match: "audit.verb == 'create' && 'a b' in audit.x"
          summary: s
        - name: d
          match: "true"
          summary: s
        """,
    )
    report = lint_paths([tmp_path])
    assert [w.path for w in report.warnings] == ["spec.auditRules[1].match"]
    assert "same match expression as spec.auditRules[0] (a)" in report.warnings[0].message


def test_no_fallback_rule_warning(tmp_path):
    write_policy(
        tmp_path / "p.yaml",
        """
        auditRules:
        - name: a
          match: "audit.verb == 'create'"
          summary: s
        eventRules:
        - name: a
          match: "event.reason == 'X'"
          summary: s
        """,
    )
    (warning,) = lint_paths([tmp_path]).warnings
    assert warning.path == "spec.auditRules"
    assert warning.message.startswith("no fallback rule: ")


@pytest.mark.parametrize(
    ("last_match", "warned"),
    [
        ("true", False),
        ("actorRef.type == 'user' && !audit.requestURI.contains('dryRun=')", False),
        (
            "audit.verb in ['create', 'update', 'patch', 'delete', 'deletecollection'] "
            "&& has(audit.responseStatus.code) && audit.responseStatus.code < 300",
            False,
        ),
        ("audit.verb in ['create', 'update'] && actorRef.type == 'user'", True),
        ("audit.verb != 'get' && actorRef.type == 'user'", True),
        ("actorRef.type == 'user' || audit.verb == 'delete'", True),
    ],
)
def test_guarded_catch_all_counts_as_fallback(tmp_path, last_match, warned):
    write_policy(
        tmp_path / "p.yaml",
        f"""
        auditRules:
        - name: a
          match: "audit.verb == 'create'"
          summary: s
        - name: last
          match: "{last_match}"
          summary: s
        """,
    )
    warnings = lint_paths([tmp_path]).warnings
    assert [w.message.startswith("no fallback rule: ") for w in warnings] == (
        [True] if warned else []
    )


@pytest.mark.parametrize("position", [0, 1])
def test_match_true_is_a_fallback_wherever_it_stands(tmp_path, position):
    rules = [
        "- name: create\n  match: \"audit.verb == 'create'\"\n  summary: s",
        "- name: delete\n  match: \"audit.verb == 'delete'\"\n  summary: s",
    ]
    rules.insert(position, '- name: any\n  match: "true"\n  summary: s')
    write_policy(tmp_path / "p.yaml", "auditRules:\n" + "\n".join(rules))
    warnings = lint_paths([tmp_path]).warnings
    assert not [w for w in warnings if w.message.startswith("no fallback rule")]
    # the rules after it are reported as unreachable instead
    assert [w.path for w in warnings] == [f"spec.auditRules[{i}].match" for i in (1, 2)[position:]]


def test_missing_policy_name_is_a_warning(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: activity.miloapis.com/v1alpha1\nkind: ActivityPolicy\n")
    report = lint_paths([path])
    assert report.errors[0].path == "spec.resource.kind"
    assert sorted(w.path for w in report.warnings) == ["metadata.name", "spec"]


def test_findings_are_in_source_order_across_files(tmp_path, capsys):
    write_policy(tmp_path / "b.yaml", GOOD.replace("create", "Create", 1), name="b")
    (tmp_path / "a.yaml").write_text("kind: Secret\n")
    write_policy(tmp_path / "c" / "c.yaml", "", name="c")
    code, lines, err = run(capsys, "lint", str(tmp_path))
    assert code == 1
    assert [line.split(":")[0] for line in lines] == [
        str(tmp_path / "a.yaml"),
        str(tmp_path / "b.yaml"),
        str(tmp_path / "c" / "c.yaml"),
    ]
    assert ": warning: " in lines[2] and ": warning: " not in lines[0]
    assert "3 file(s), 2 policy(ies): 2 error(s), 1 warning(s)" in err


def test_syntax_errors_and_missing_paths_are_errors(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("a: [\n")
    code, lines, _ = run(capsys, "lint", str(tmp_path), str(tmp_path / "nope"))
    assert code == 1
    assert lines[0] == f"{tmp_path / 'nope'}: <unnamed>: no such file or directory"
    assert lines[1].startswith(f"{tmp_path / 'bad.yaml'}:2:1: <unnamed>: invalid YAML: ")


def test_nothing_to_lint_is_an_error(tmp_path, capsys):
    code, lines, _ = run(capsys, "lint", str(tmp_path))
    assert code == 1
    assert lines == [f"{tmp_path}: <unnamed>: no ActivityPolicy documents found"]


def test_real_corpus_lints_without_errors(real_policies_dir, capsys):
    older = require_shared("real-policies", "older-versions")
    code, lines, _ = run(
        capsys, "lint", *map(str, sorted(real_policies_dir.glob("*.yaml"))), str(older)
    )
    assert code == 0
    assert all(": warning: " in line for line in lines)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("a==b", "a == b", True),
        ("x in y", "x  in\ny", True),
        ("x in y", "xin y", False),
        ("'a  b' == c", "'a b' == c", False),
        ('"it\'s  x"  ==  c', '"it\'s  x"==c', True),
    ],
)
def test_normalise_expression(a, b, same):
    assert (normalise_expression(a) == normalise_expression(b)) is same


# --- the command line ----------------------------------------------------------------------


def test_version(capsys):
    code, lines, _ = run(capsys, "version")
    assert code == 0
    assert lines == [
        f"activity-processor {__version__}",
        f"implementation: {native.implementation()}",
    ]


def test_no_command_prints_help_and_exits_2(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "lint" in err


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "lint")[0] == 2
    assert run(capsys, "no-such-command")[0] == 2


def test_help_exits_0(capsys):
    code, lines, _ = run(capsys, "--help")
    assert code == 0 and any("version" in line for line in lines)
