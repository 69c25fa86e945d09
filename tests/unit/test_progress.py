"""Progress bars on long work: shown on a terminal, and no progress text at all otherwise.

tqdm decides from ``sys.stderr.isatty()`` (``disable=None``); a terminal is simulated by a text
buffer that says it is one.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from processor.bench import query as bench_query
from processor.bench.corpus import write_jsonl
from processor.cli import main
from processor.commands.loadtest import locust_status
from processor.progress import wait_with_progress

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICIES = str(REPO_ROOT / "policies")
#: What tqdm's bars contain (percentage bar, rate, carriage returns).
BAR_MARKS = ("%|", "it/s", "B/s", "rows/s", "\r")


class Terminal(io.StringIO):
    """A stderr that is a terminal."""

    buffer = io.BytesIO()  # what binary writers (translate's dead letters) would write to

    def isatty(self) -> bool:
        return True


class FakeSink:
    """What ``bench --query`` data generation calls on a sink."""

    database = "audit"

    def __init__(self) -> None:
        self.statements: list[str] = []

    def query(self, sql: str) -> list[dict[str, Any]]:
        return [{"c": 0}]

    def execute(self, sql: str) -> None:
        self.statements.append(sql)


def no_progress(text: str) -> bool:
    return not any(mark in text for mark in BAR_MARKS)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    write_jsonl(str(path), 2500, seed=5)
    return path


def translate(corpus: Path, tmp_path: Path) -> int:
    files = ["--input", str(corpus), "--output", str(tmp_path / "a")]
    return main(["translate", "-f", POLICIES, *files, "--dead-letter", str(tmp_path / "dlq")])


def test_translate_is_quiet_when_stderr_is_not_a_terminal(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert translate(corpus, tmp_path) == 0
    err = capsys.readouterr().err
    assert err.startswith("records=2500 ") and err.count("\n") == 1, err
    assert no_progress(err)


def test_translate_shows_bytes_rate_and_eta_on_a_terminal(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert translate(corpus, tmp_path) == 0
    text = terminal.getvalue()
    assert "translate:" in text and "B/s" in text, text
    size = corpus.stat().st_size
    assert f"/{size / 1024:.0f}k" in text or f"/{size / 1024**2:.2f}M" in text, text
    # the bar is erased before the summary line
    assert text.rsplit("\r", 1)[-1].startswith("records=2500 ") and text.count("\n") == 1


def test_translate_of_a_pipe_has_no_total(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from processor.commands.translate import _remaining

    with corpus.open("rb") as regular:
        assert _remaining(regular) == corpus.stat().st_size
    proc = subprocess.Popen(["cat", str(corpus)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and _remaining(proc.stdout) is None
    finally:
        proc.communicate()
    assert _remaining(io.BytesIO(b"{}\n")) is None


def test_bench_query_generation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_query, "_CHUNK", 1000)
    sink = FakeSink()
    assert bench_query._ensure_rows(sink, 3500) == 3500
    assert sum("INSERT INTO audit.activities" in s for s in sink.statements) == 4
    err = capsys.readouterr().err
    assert err.startswith("generated 3,500 activities in ") and no_progress(err), err
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bench_query._ensure_rows(FakeSink(), 3500)
    assert "generating activities:" in terminal.getvalue() and "rows" in terminal.getvalue()


def test_loadtest_wait(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def sleeper(code: int) -> subprocess.Popen[bytes]:
        script = f"import sys, time; time.sleep(0.7); sys.exit({code})"
        return subprocess.Popen([sys.executable, "-c", script])

    samples = [(0.0, {"p0": 0.0, "lag": 5.0}), (1.0, {"p0": 1000.0, "p1": 500.0, "lag": 1.0})]
    assert locust_status(samples) == "1,500 records/s" and locust_status(samples[:1]) == ""
    assert wait_with_progress(sleeper(1), 2.0, "load", lambda: locust_status(samples)) == 1
    assert capsys.readouterr().err == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert wait_with_progress(sleeper(0), 2.0, "load", lambda: locust_status(samples)) == 0
    text = terminal.getvalue()
    assert "load:" in text and "/2 s" in text and "1,500 records/s" in text, text
