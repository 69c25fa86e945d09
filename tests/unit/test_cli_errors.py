"""Every ``activity`` command fails with a message a person can act on, never with a traceback.

The commands are discovered from the parser :func:`processor.cli.build_parser` builds (nested ones
such as ``policy apply`` included); the tables below say what each needs to get past argparse,
which of its files to leave missing and which bad values to give. A test fails when a command is
added without an entry, or when a file option is not exercised.

Each command then runs in a subprocess (``python -m processor``, as a user runs it) with (a) an
unknown flag, (b) a missing file, (c) a bad value, and must exit with status 1 or 2, print no
traceback and create no data directory. NATS is unreachable (``nats://127.0.0.1:1``): the one-shot
NATS commands must say so at once. ``run``, ``reconcile`` and ``ingest`` are servers that wait for
NATS by design (their clients reconnect forever), so only their missing-file and bad-value paths,
which fail before connecting, are run here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from processor import cli
from processor.errors import ProcessorError

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICIES = str(REPO_ROOT / "policies")
POLICY_FILE = str(REPO_ROOT / "policies" / "inventory" / "inventory-nodes.yaml")
EXAMPLE = str(REPO_ROOT / "examples" / "preview-deployment.yaml")
UNREACHABLE_NATS = "nats://127.0.0.1:1"
MISSING = "{missing}"  # replaced by the path of a file that does not exist
NOT_YAML = "{not_yaml}"  # replaced by the path of a file that is not YAML

#: What each command needs to get past argparse (required positionals and options).
REQUIRED: dict[str, list[str]] = {
    "demo": [],
    "run": [],
    "reconcile": [],
    "ingest": [],
    "ingest webhook-config": ["--server", "https://ingest.example:8443"],
    "serve": [],
    "migrate": [],
    "kafka": [],
    "kafka topics": [],
    "query": [],
    "audit": [],
    "audit query": [],
    "events": [],
    "events query": [],
    "facets": ["spec.actor.name"],
    "history": ["deployments", "web"],
    "watch": [],
    "mcp": [],
    "policy": [],
    "policy apply": ["-f", POLICIES],
    "policy list": [],
    "policy delete": ["p"],
    "dlq": [],
    "dlq list": [],
    "dlq retry": [],
    "loadtest": [],
    "preview": [],
    "lint": [POLICIES],
    "translate": ["--policies", POLICIES],
    "bench": [],
    "version": [],
}

#: Options and positionals that name an input file (each must be exercised in MISSING_FILE).
FILE_OPTIONS = frozenset(
    {
        "-f",
        "--config",
        "--policy",
        "--policies",
        "--input",
        "--locustfile",
        "--token-key-file",
        "--token-file",
    }
)
FILE_POSITIONALS = frozenset({"paths"})
#: Options with a file option's name that name something else (``dlq retry --policy NAME``).
NOT_FILES = frozenset({("dlq retry", "--policy")})

#: (command, argv) with one file missing; the message must name that file.
MISSING_FILE: list[tuple[str, list[str]]] = [
    ("run", ["--config", MISSING]),
    ("run", ["--policies", MISSING, "--clickhouse-url", "memory://", "--health-addr", ""]),
    ("run", ["-f", MISSING, "--clickhouse-url", "memory://", "--health-addr", ""]),
    ("reconcile", ["--config", MISSING]),
    ("kafka topics", ["--config", MISSING]),
    ("ingest", ["--token-file", MISSING]),
    ("ingest webhook-config", ["--server", "https://ingest.example:8443", "--token-file", MISSING]),
    ("serve", ["--token-file", MISSING]),
    ("serve", ["--token-key-file", MISSING]),
    ("query", ["--clickhouse-url", "memory://", "--token-key-file", MISSING]),
    ("audit query", ["--clickhouse-url", "memory://", "--token-key-file", MISSING]),
    ("events query", ["--clickhouse-url", "memory://", "--token-key-file", MISSING]),
    ("policy apply", ["-f", MISSING]),
    ("policy apply", ["--config", MISSING, "-f", POLICIES]),
    ("policy list", ["--config", MISSING]),
    ("policy delete", ["--config", MISSING, "name"]),
    ("loadtest", ["--locustfile", MISSING]),
    ("loadtest", ["--policies", MISSING]),
    ("preview", ["-f", MISSING]),
    ("preview", ["--policy", MISSING, "--input", EXAMPLE]),
    ("preview", ["--policy", POLICY_FILE, "--input", MISSING]),
    ("lint", [MISSING]),
    ("lint", ["-f", MISSING]),
    ("translate", ["--policies", MISSING]),
    ("translate", ["-f", MISSING]),
    ("translate", ["--policies", POLICIES, "--input", MISSING]),
    ("bench", ["--input", MISSING]),
    ("bench", ["--policies", MISSING, "--count", "10"]),
]

#: (command, argv, text the message must contain): bad values, and unreachable servers.
BAD_VALUE: list[tuple[str, list[str], str]] = [
    ("demo", ["--data-dir", "/dev/null/demo"], "Not a directory"),
    ("demo", ["--log-level", "bogus"], "argument --log-level: unknown log level 'bogus'"),
    ("run", ["--max-record-bytes", "-5"], "max_record_bytes must be at least 1"),
    ("run", ["--partition-count", "0"], "partition_count must be at least 1"),
    ("run", ["--partitions", "9-12"], "out of range"),
    ("run", ["--config", NOT_YAML], "invalid YAML in the config file"),
    ("run", ["--kafka-compression", "brotli"], "kafka_compression must be one of none, gzip"),
    ("reconcile", ["--partition-count", "-1"], "partition_count must be at least 1"),
    ("ingest", ["--batch-items", "0"], "batch_items must be at least 1"),
    ("ingest", ["--kafka-compression", "LZ4"], "kafka_compression must be one of none, gzip"),
    ("ingest", ["--tls-cert-file", NOT_YAML], "tls_cert_file and tls_private_key_file go together"),
    ("ingest webhook-config", [], "give --token-file or --client-certificate"),
    ("serve", ["--workers", "0"], "workers must be at least 1"),
    ("serve", ["--listen-addr", "127.0.0.1:0"], "no store at"),
    ("migrate", ["--clickhouse-url", "bogus://x"], "unsupported sink URL"),
    ("kafka topics", ["--partition-count", "0"], "partition_count must be at least 1"),
    ("kafka topics", ["--kafka-brokers", "127.0.0.1:1"], "cannot reach Kafka at 127.0.0.1:1"),
    ("query", ["--limit", "-5"], "must be between 0 and 1000"),
    ("audit query", ["--limit", "-5"], "must be between 0 and 1000"),
    ("events query", ["--limit", "1001"], "must be between 0 and 1000"),
    ("facets", ["--limit", "-5"], "must be >= 0"),
    ("history", ["--limit", "-5"], "--limit must be between"),
    ("watch", ["--limit", "-5"], "must be >= 0"),
    ("watch", ["--since", "-1"], "must be >= 0"),
    ("watch", [], f"cannot watch {UNREACHABLE_NATS}"),
    ("mcp", ["--port", "0"], "must be between 1 and 65535"),
    ("mcp", ["--clickhouse-url", "chdb:///nonexistent/activity-mcp"], "no store at"),
    ("policy apply", [], f"cannot connect to NATS at {UNREACHABLE_NATS}"),
    ("policy list", [], f"cannot connect to NATS at {UNREACHABLE_NATS}"),
    ("policy delete", [], f"cannot connect to NATS at {UNREACHABLE_NATS}"),
    ("dlq list", [], f"cannot connect to NATS at {UNREACHABLE_NATS}"),
    ("dlq retry", ["--limit", "-5"], "must be >= 0"),
    ("dlq retry", [], f"cannot connect to NATS at {UNREACHABLE_NATS}"),
    ("loadtest", ["--workers", "-1"], "must be >= 0"),
    ("loadtest", ["--duration", "0"], "must be > 0"),
    ("loadtest", ["--list-share", "2"], "must be between 0 and 1"),
    ("loadtest", ["--nats-url", UNREACHABLE_NATS, "--workers", "0"], "cannot connect to NATS"),
    ("preview", ["-f", EXAMPLE, "-o", "bogus"], "invalid choice"),
    ("preview", ["-f", NOT_YAML], "invalid YAML"),
    ("lint", [NOT_YAML], "invalid YAML"),
    ("translate", ["--max-record-bytes", "-5"], "must be >= 1"),
    ("translate", ["--max-record-bytes", "0"], "must be >= 1"),
    ("bench", ["--count", "-5"], "must be >= 0"),
    ("bench", ["--repeat", "0"], "must be >= 1"),
    ("bench", ["--kafka-compression", "zstd,brotli"], "codecs are none, gzip, snappy, lz4, zstd"),
]

#: Commands without a value to get wrong (groups print their usage; version takes nothing).
NO_VALUES = frozenset({"audit", "events", "policy", "dlq", "kafka", "version"})


def command_parsers() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(``"policy apply"``, its parser) for every command and group of the ``activity`` parser."""

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[Any]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield " ".join((*path, name)), sub
                    yield from walk(sub, (*path, name))

    yield from walk(cli.build_parser(), ())


def file_options(parser: argparse.ArgumentParser) -> set[str]:
    """The options (``--input``) and positionals (``paths``) of ``parser`` that name files."""
    found = set()
    for action in parser._actions:
        if action.option_strings:
            found |= FILE_OPTIONS & set(action.option_strings)
        elif action.dest in FILE_POSITIONALS:
            found.add(action.dest)
    return found


def exercised(argv: list[str]) -> str:
    """The option (or ``paths``) an argv of MISSING_FILE leaves missing."""
    index = argv.index(MISSING)
    return argv[index - 1] if index else "paths"


COMMANDS = dict(command_parsers())


def test_every_command_has_an_entry() -> None:
    assert set(COMMANDS) == set(REQUIRED), "add the new command to REQUIRED and the tables"
    assert set(COMMANDS) - NO_VALUES <= {name for name, _, _ in BAD_VALUE}


def test_every_file_option_is_exercised() -> None:
    wanted = {(name, option) for name, p in COMMANDS.items() for option in file_options(p)}
    wanted -= NOT_FILES
    assert wanted - {(name, exercised(argv)) for name, argv in MISSING_FILE} == set()


# -- running a command -------------------------------------------------------------------------
def run_activity(tmp_path: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m processor ARGV`` in ``tmp_path``, with no store, no NATS and no stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_")}
    env["ACTIVITY_DATA_DIR"] = str(tmp_path / "data")
    env["ACTIVITY_NATS_URL"] = UNREACHABLE_NATS
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    try:
        return subprocess.run(
            [sys.executable, "-m", "processor", *argv],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"activity {' '.join(argv)} hung for 30 s instead of failing")


def fill(argv: list[str], tmp_path: Path) -> list[str]:
    """``argv`` with the MISSING and NOT_YAML placeholders replaced by paths in ``tmp_path``."""
    not_yaml = tmp_path / "not-yaml.yaml"
    not_yaml.write_text("spec:\n  resource: [a, b\n  x: }\n")
    paths = {MISSING: str(tmp_path / "nope" / "missing.yaml"), NOT_YAML: str(not_yaml)}
    return [paths.get(arg, arg) for arg in argv]


def assert_clean_failure(proc: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    """Exit status 1 or 2, no traceback anywhere, and no data directory created."""
    shown = f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert proc.returncode in (1, 2), shown
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, shown
    assert not (tmp_path / "data").exists(), f"a failing command created the data dir\n{shown}"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_unknown_flag(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse rejects it (in-process: nothing runs) with the usage, exit status 2."""
    code = cli.main([*name.split(), *REQUIRED[name], "--no-such-flag"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "unrecognized arguments: --no-such-flag" in err or "required" in err, err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("name", "argv"), MISSING_FILE, ids=[f"{n} {exercised(a)}" for n, a in MISSING_FILE]
)
def test_missing_file(name: str, argv: list[str], tmp_path: Path) -> None:
    args = fill([*name.split(), *argv], tmp_path)
    proc = run_activity(tmp_path, args)
    assert_clean_failure(proc, tmp_path)
    # which file, by name (lint reports its findings on stdout, like a compiler)
    assert str(tmp_path / "nope" / "missing.yaml") in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("name", "argv", "expected"), BAD_VALUE, ids=[f"{n} {' '.join(a)}" for n, a, _ in BAD_VALUE]
)
def test_bad_value(name: str, argv: list[str], expected: str, tmp_path: Path) -> None:
    proc = run_activity(tmp_path, fill([*name.split(), *REQUIRED[name], *argv], tmp_path))
    assert_clean_failure(proc, tmp_path)
    assert expected in proc.stderr + proc.stdout


# -- the safety net in main --------------------------------------------------------------------
def _raise(exc: BaseException) -> Any:
    def handler(args: argparse.Namespace) -> int:
        raise exc

    return handler


def register_failing(subparsers: Any) -> None:
    """``activity fail KIND``: a command that raises, to test :func:`processor.cli.main`."""
    parser = subparsers.add_parser("fail")
    actions = parser.add_subparsers(dest="fail_command", required=True)
    errors: dict[str, BaseException] = {
        "file": FileNotFoundError(2, "No such file or directory", "x.yaml"),
        "processor": ProcessorError("the store is read-only; remount it"),
        "bug": RuntimeError("dictionary changed size during iteration"),
        "interrupt": KeyboardInterrupt(),
        "pipe": BrokenPipeError(32, "Broken pipe"),
    }
    for kind, exc in errors.items():
        actions.add_parser(kind).set_defaults(handler=_raise(exc))


@pytest.fixture
def failing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "SUBCOMMANDS", [f"{__name__}:register_failing"])
    monkeypatch.delenv("ACTIVITY_DEBUG", raising=False)


@pytest.mark.usefixtures("failing")
@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("file", 1, "activity fail file: error: x.yaml: No such file or directory\n"),
        ("processor", 1, "activity fail processor: error: the store is read-only; remount it\n"),
        (
            "bug",
            1,
            "activity fail bug: error: RuntimeError: dictionary changed size during iteration "
            "(run with ACTIVITY_DEBUG=1 for the traceback)\n",
        ),
        ("interrupt", 130, ""),
        ("pipe", 1, ""),
    ],
)
def test_main_turns_exceptions_into_one_line(
    kind: str, code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["fail", kind]) == code
    assert capsys.readouterr().err == message


@pytest.mark.usefixtures("failing")
def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--debug", "fail", "bug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith("for the traceback)\n")
    monkeypatch.setenv("ACTIVITY_DEBUG", "1")
    assert cli.main(["fail", "processor"]) == 1
    assert "Traceback" in capsys.readouterr().err


# -- specific messages -------------------------------------------------------------------------
def test_translate_names_the_flag_and_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.jsonl"
    assert cli.main(["translate", "--policies", POLICIES, "--input", str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"activity translate: cannot read --input {missing}: No such file or directory\n"
    )
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    target = tmp_path / "no-dir" / "out.jsonl"
    argv = ["translate", "--policies", POLICIES, "--input", str(source), "--output", str(target)]
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == (
        f"activity translate: cannot write --output {target}: the directory {target.parent} "
        "does not exist; create it or pick another path\n"
    )


def test_max_record_bytes_is_at_least_1_and_documented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from processor.config import Settings
    from processor.translate import DEFAULT_MAX_RECORD_BYTES

    for value in ("0", "-5"):
        assert cli.main(["translate", "--policies", POLICIES, "--max-record-bytes", value]) == 2
        assert f"argument --max-record-bytes: must be >= 1: {value}" in capsys.readouterr().err
    assert cli.main(["translate", "-h"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--max-record-bytes N dead-letter larger records unread (default: " in help_text
    assert f"{DEFAULT_MAX_RECORD_BYTES} bytes)" in help_text
    with pytest.raises(ValueError, match="max_record_bytes must be at least 1"):
        Settings(max_record_bytes=0)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["query"], "--continue"),
        (["audit", "query"], "--continue"),
        (["events", "query"], "--continue"),
        (["policy", "apply"], "--filename"),
        (["translate"], "--max-record-bytes"),
    ],
)
def test_options_have_help(command: list[str], option: str) -> None:
    parser = COMMANDS[" ".join(command)]
    action = next(a for a in parser._actions if option in a.option_strings)
    assert action.help


def test_config_file_errors_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert cli.main(["run", "--config", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"activity run: cannot read the config file {missing}: No such file or directory\n"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("nats_url: [a\nlog_level: }\n")
    assert cli.main(["run", "--config", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"activity run: {broken}:2:") and "invalid YAML in the config" in err


# -- read-only commands create nothing ---------------------------------------------------------
READ_ONLY = [
    ["query"],
    ["audit", "query"],
    ["events", "query"],
    ["facets", "spec.actor.name"],
    ["history", "deployments", "web"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=[" ".join(c) for c in READ_ONLY])
def test_read_only_commands_create_no_store(
    command: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ACTIVITY_CLICKHOUSE_URL", raising=False)
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path / "data"))
    deep = tmp_path / "nonexistent" / "deep" / "dir"
    assert cli.main([*command, "--clickhouse-url", f"chdb://{deep}"]) == 1
    assert capsys.readouterr().err == f"error: no store at {deep}\n"
    empty = tmp_path / "empty"
    empty.mkdir()  # a directory, but no chDB store in it: nothing is written there either
    assert cli.main([*command, "--clickhouse-url", f"chdb://{empty}"]) == 1
    assert capsys.readouterr().err == f"error: no store at {empty}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]
    assert list(empty.iterdir()) == []


def test_no_store_at_the_default_location_mentions_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTIVITY_CLICKHOUSE_URL", raising=False)
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["query"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no store at {tmp_path / 'data' / 'chdb'}, the default location.")
    assert "`activity demo --keep`" in err and "run `activity migrate`" in err
    assert "missing table" not in err
    assert not (tmp_path / "data").exists()
