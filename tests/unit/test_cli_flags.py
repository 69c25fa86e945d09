"""kubectl's ``-f/--filename`` for files of resources on every command that reads policies (the
older spellings kept), and usage errors found by argparse (exit 2) rather than by the handler."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.bench.corpus import write_jsonl
from processor.cli import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICIES = str(REPO_ROOT / "policies")

#: command -> the old spelling that ``-f/--filename`` joins ("" when it is new or was always -f).
FILENAME_COMMANDS = {
    "translate": "--policies",
    "run": "--policies",
    "preview": "",
    "policy apply": "",
    "lint": "",
}


@pytest.mark.parametrize("name", sorted(FILENAME_COMMANDS))
def test_help_documents_filename(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*name.split(), "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "-f PATH" in text and "--filename PATH" in text
    old = FILENAME_COMMANDS[name]
    if old:
        assert f"{old} PATH" in text and f"({old} is the same option)" in text


@pytest.mark.parametrize("flag", ["-f", "--filename", "--policies"])
def test_translate_filename_and_policies_are_one_option(
    flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    write_jsonl(str(corpus), 300, seed=2)
    out = tmp_path / f"out{flag}.jsonl"
    argv = ["translate", flag, POLICIES, "--input", str(corpus), "--output", str(out)]
    assert main(argv) == 0
    summary = capsys.readouterr().err
    assert summary.startswith("records=300 activities=") and out.stat().st_size > 0


def test_run_and_lint_take_filename(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "-f", "a", "b"]).policies == ["a", "b"]
    assert parser.parse_args(["run", "--filename", "a"]).policies == ["a"]
    assert parser.parse_args(["run", "--policies", "a"]).policies == ["a"]
    assert main(["lint", "-f", POLICIES]) == 0
    from_flag = capsys.readouterr()
    assert main(["lint", POLICIES]) == 0
    assert capsys.readouterr() == from_flag
    assert main(["lint"]) == 2
    assert "PATH... or -f PATH" in capsys.readouterr().err


def test_demo_log_level_is_checked_by_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--log-level", "bogus"]) == 2
    err = capsys.readouterr().err
    expected = "argument --log-level: unknown log level 'bogus': use DEBUG, INFO, WARNING or ERROR"
    assert expected in err
    assert "ValueError" not in err
    assert build_parser().parse_args(["demo", "--log-level", "debug"]).log_level == "DEBUG"
