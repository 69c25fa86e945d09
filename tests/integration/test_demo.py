"""``activity demo`` as a newcomer runs it: a fresh process, nothing set up.

Then as the newcomer goes on: every command the demo prints for its kept data is run as printed,
against that data, and must show the demo's story.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from processor.demo.scenario import scenario
from tests.integration import serve_tools as st

pytestmark = pytest.mark.integration


ACTIVITY = [sys.executable, "-m", "processor"]

#: What each printed follow-up command must show on the demo's data (its output, one string each).
EXPECTED_OUTPUT = {
    "query": ["carol created Circuit ams-fra-1", "Circuit ams-fra-1 is ready"],
    "history": [
        "Change #4",
        "Created resource",
        '"reason": "ProviderNotFound"',
        '+        "status": "True",',
        "Changes: spec",
        '+    "bandwidthMbps": 100000,',
    ],
    "audit": ["bob", "shop/deployments/web", "403"],
    "events": ["NotReady", "Circuit/ams-fra-1", "BackOff", "NodeNotReady"],
    "facets": ["FIELD: spec.actor.name", "carol", "FIELD: spec.resource.kind", "Circuit"],
    "preview": ["[audit ", "matched audit rule", "alice created Deployment"],
}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, HOME=str(tmp_path), COLUMNS="200", **extra)
    env.pop("ACTIVITY_CLICKHOUSE_URL", None)
    env.pop("ACTIVITY_DATA_DIR", None)
    return env


def _demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*ACTIVITY, "demo", *args],
        capture_output=True, text=True, env=_env(tmp_path), timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _summary(lines: list[str]) -> tuple[int, re.Match[str]]:
    """The index and match of the counts line (no rate in it: ``activity bench`` measures that)."""
    pattern = (
        rf"{len(scenario())} records in \d+ messages -> (\d+) activities, 0 dead letters "
        r"\(throughput: `activity bench`\)"
    )
    for number, line in enumerate(lines):
        match = re.fullmatch(pattern, line)
        if match:
            return number, match
    raise AssertionError("no summary line in:\n" + "\n".join(lines[-12:]))


def _printed_commands(stdout: str) -> list[str]:
    """The follow-up commands the demo printed (indented lines starting with ``activity``)."""
    report = stdout[stdout.rindex("The data is kept in") :]
    return [line.strip() for line in report.splitlines() if line.startswith("  activity ")]


def _run_printed(command: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[0] == "activity", command
    return subprocess.run(
        [*ACTIVITY, *argv[1:]],
        capture_output=True, text=True, env=_env(tmp_path), timeout=120, cwd=tmp_path,
    )  # fmt: skip


def test_demo_prints_the_timeline_and_exits_zero(tmp_path, require_nats):
    proc = _demo(tmp_path)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["TIME", "ORIGIN", "ACTOR", "KIND", "SUMMARY"]
    number, match = _summary(lines)
    assert int(match.group(1)) == number - 1  # one table row per stored activity
    assert "records/s" not in proc.stdout
    # the records went in through `activity ingest`, as kube-apiserver and an exporter send them
    webhook = r"webhook: http://127\.0\.0\.1:\d+/audit \((\d+) requests, .*"
    sent = re.fullmatch(webhook, lines[number + 1])
    assert sent and int(sent.group(1)) > 1, lines[number + 1]
    text = "\n".join(lines[:number])
    order = [
        "carol created Circuit ams-fra-1",
        'Circuit ams-fra-1 is not ready: Provider "zayo" not found',
        "carol registered Provider Zayo",
        "Circuit ams-fra-1 is ready",
        "carol updated Circuit ams-fra-1",
    ]
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)
    # the last lines: where the data went (a temporary directory, gone) and how to keep it
    report = "\n".join(lines[number + 1 :])
    gone = re.search(r"The data \(NATS and chDB in (\S+)\) is deleted on exit", report)
    assert gone, report
    assert not Path(gone.group(1)).exists()
    assert "activity demo --data-dir ./activity-demo" in report and "--keep" in report


def _post_to_the_kept_webhook(banner: str) -> None:
    """POST an audit EventList to the webhook the banner names, with the token it names."""
    url = re.search(r"webhook:\s+(http://127\.0\.0\.1:\d+/audit)", banner)
    token_file = re.search(r"Bearer \$\(cat (.+?)\)", banner)
    assert url and token_file, banner
    token = Path(shlex.split(token_file.group(1))[0]).read_text().strip()
    record = next(r.payload for r in scenario() if r.kind == "audit")
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [record]}
    request = urllib.request.Request(
        url.group(1), data=orjson.dumps(body), headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert orjson.loads(response.read())["accepted"] == 1


def test_printed_commands_explore_the_kept_data(tmp_path, require_nats):
    data = tmp_path / "demo data"  # a space: the printed commands quote the path
    proc = _demo(tmp_path, "--data-dir", str(data))
    commands = _printed_commands(proc.stdout)
    assert "The data is kept in " + str(data) in proc.stdout
    assert [shlex.split(c)[1] for c in commands] == list(EXPECTED_OUTPUT)
    assert any(c.startswith("activity history circuits ams-fra-1 --diff") for c in commands)
    assert any(c.startswith("activity audit query ") for c in commands)
    assert any(c.startswith("activity events query ") for c in commands)
    for command in commands:
        assert f"chdb://{data / 'chdb'}" in shlex.split(command), command
        result = _run_printed(command, tmp_path)
        assert result.returncode == 0, (command, result.stderr[-2000:])
        assert "No " not in result.stderr, (command, result.stderr)
        for expected in EXPECTED_OUTPUT[shlex.split(command)[1]]:
            assert expected in result.stdout, (command, expected, result.stdout)


@contextmanager
def _kept_demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``activity demo --keep`` and its banner (flushed once the demo is up); killed if the test
    ends before it does."""
    proc = subprocess.Popen(
        [*ACTIVITY, "demo", "--keep"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=_env(tmp_path, TMPDIR=str(tmp_path)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = ""
        for line in proc.stdout:
            banner += line
            if "printed then" in line:
                break
        yield proc, banner
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_keep_stays_up_and_keeps_the_data_after_ctrl_c(tmp_path, require_nats):
    with _kept_demo(tmp_path) as (proc, banner):
        assert "The demo keeps running" in banner, banner
        _post_to_the_kept_webhook(banner)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    kept = re.search(r"The data is kept in (\S+) ", rest)
    assert kept, rest
    assert Path(kept.group(1)).parent == tmp_path and (Path(kept.group(1)) / "chdb").is_dir()
    history = next(c for c in _printed_commands(rest) if " history " in c)
    result = _run_printed(history, tmp_path)
    assert result.returncode == 0 and "Change #4" in result.stdout, result.stderr[-2000:]


def test_keep_prints_a_working_kubectl_line(tmp_path: Path, require_nats: None) -> None:
    """The demo serves the Activity API in its own process (chDB is opened by one process at a
    time): the printed kubectl line works on the demo's data."""
    binary = st.kubectl_binary()
    with _kept_demo(tmp_path) as (proc, banner):
        found = re.search(r"API:\s+(kubectl --server http://127\.0\.0\.1:\d+ get activities -A)",
                          banner)  # fmt: skip
        assert found, banner
        argv = shlex.split(found.group(1))
        kubectl = st.Kubectl(binary, argv[2], tmp_path / "kubectl")
        out = kubectl.ok(*argv[3:])
        assert out.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "SUMMARY"]
        assert "alice deleted Deployment worker in shop" in out
        yaml_out = kubectl.ok("get", "events", "-A", "-o", "yaml")
        assert "NodeNotReady" in yaml_out
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
