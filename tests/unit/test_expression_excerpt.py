"""Expression errors show the field the user wrote with a caret at the position the error names,
the same way in ``lint``, ``preview`` and ``translate`` (``query --filter`` draws it too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.cli import main
from processor.policy import load_file
from processor.policy.validate import check_policies

POLICY = """\
apiVersion: activity.miloapis.com/v1alpha1
kind: ActivityPolicy
metadata: {name: bad}
spec:
  resource: {apiGroup: apps, kind: Deployment}
  auditRules:
    - name: one
      match: "audit.verb == 'create' && audit.objectRef.name == )"
      summary: "{{ actor }} created {{ audit.objectRef.name + nope }}"
"""


def errors(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY)
    loaded = load_file(path)
    return {e.path: e.excerpt for e in check_policies(loaded.policies).errors}


def test_the_caret_is_under_the_position_in_the_field(tmp_path: Path) -> None:
    found = errors(tmp_path)
    match = "audit.verb == 'create' && audit.objectRef.name == )"
    assert found["spec.auditRules[0].match"] == f" | {match}\n | {'.' * match.index(')')}^"
    summary = "{{ actor }} created {{ audit.objectRef.name + nope }}"
    # the unknown name is reported at its column in the summary, not in its {{ }} block
    assert found["spec.auditRules[0].summary"] == (
        f" | {summary}\n | {'.' * summary.index('nope')}^"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["lint", "{path}"],
        ["translate", "--policies", "{path}", "--input", "/dev/null"],
        ["preview", "--policy", "{path}", "--input", "{records}"],
    ],
)
def test_every_command_prints_the_excerpt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(POLICY)
    records = tmp_path / "in.json"
    records.write_text('{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": "a"}')
    args = [a.format(path=path, records=records) for a in command]
    assert main(args) == 1
    captured = capsys.readouterr()
    err = captured.out + captured.err  # lint prints its findings on stdout
    assert " | audit.verb == 'create' && audit.objectRef.name == )\n" in err
    assert f" | {'.' * 50}^\n" in err
    summary = "{{ actor }} created {{ audit.objectRef.name + nope }}"
    assert f" | {summary}\n | {'.' * summary.index('nope')}^\n" in err
