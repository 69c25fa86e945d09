"""What ``activity demo`` prints last: the counts, where the data went, what to try next."""

from __future__ import annotations

import shlex
from pathlib import Path

from processor.cli import build_parser
from processor.demo.explore import chdb_url, data_report, explore_commands
from processor.demo.run import DemoResult


def test_summary_has_counts_and_no_rate() -> None:
    line = DemoResult(49, 148, 42, 0, []).summary()
    assert line == (
        "148 records in 49 messages -> 42 activities, 0 dead letters (throughput: `activity bench`)"
    )


def test_deleted_data_says_so_and_how_to_keep_it(tmp_path: Path) -> None:
    report = data_report(tmp_path, kept=False)
    assert f"in {tmp_path}) is deleted on exit" in report
    assert "activity demo --data-dir ./activity-demo" in report
    assert "activity query" not in report  # nothing to explore once it is gone


def test_kept_data_names_the_directory_and_the_commands(tmp_path: Path) -> None:
    report = data_report(tmp_path / "d", kept=True)
    assert f"kept in {(tmp_path / 'd').resolve()} " in report
    printed = [line.strip() for line in report.splitlines() if line.startswith("  activity ")]
    assert printed == explore_commands(tmp_path / "d")


def test_commands_parse_and_name_the_kept_store(tmp_path: Path) -> None:
    data = tmp_path / "with space" / "demo"
    parser = build_parser()
    for command in explore_commands(data):
        argv = shlex.split(command)
        assert argv[0] == "activity"
        args = parser.parse_args(argv[1:])
        assert args.clickhouse_url == chdb_url(data) == f"chdb://{(data / 'chdb').resolve()}"


def test_relative_data_dir_gives_an_absolute_url() -> None:
    assert chdb_url(Path("activity-demo")) == f"chdb://{Path.cwd() / 'activity-demo' / 'chdb'}"
