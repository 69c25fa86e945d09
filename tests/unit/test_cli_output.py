"""One ``-o`` convention (kubectl's) on every command that prints objects, and tables with headers.

Every such command accepts ``-o {table,wide,json,yaml}``, says in ``--help`` that ``table`` is the
default, and prints JSON that parses with ``-o json``. Commands run in-process; the ones that read
a store use an empty chDB store made by ``activity migrate``; the NATS ones (``watch``, ``policy
list``, ``dlq list``) get their NATS calls replaced by fakes, so their printing is what is tested.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from processor.cli import main
from processor.query.output import StreamTable
from processor.query.watch import Watched

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICIES = str(REPO_ROOT / "policies")
EXAMPLE = str(REPO_ROOT / "examples" / "preview-deployment.yaml")
STORE = "{store}"  # replaced by the chdb:// URL of the empty store

#: command -> arguments that make it print something without data of its own.
OUTPUT_COMMANDS: dict[str, list[str]] = {
    "query": ["--clickhouse-url", STORE],
    "audit query": ["--clickhouse-url", STORE],
    "events query": ["--clickhouse-url", STORE],
    "facets": ["spec.actor.name", "--clickhouse-url", STORE],
    "history": ["deployments", "web", "--clickhouse-url", STORE],
    "watch": ["--limit", "2"],
    "preview": ["-f", EXAMPLE],
    "lint": [POLICIES],
    "policy list": [],
    "dlq list": [],
    "version": [],
}


def activity(sequence: int, actor: str, summary: str) -> dict[str, Any]:
    return {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "Activity",
        "metadata": {
            "creationTimestamp": f"2026-11-20T09:00:0{sequence}Z",
            "resourceVersion": str(sequence),
        },
        "spec": {
            "summary": summary,
            "changeSource": "human",
            "actor": {"name": actor},
            "resource": {"kind": "Deployment", "name": "web", "namespace": "prod"},
            "tenant": {"type": "Organization", "name": "acme"},
            "origin": {"type": "audit"},
        },
    }


WATCHED = [
    Watched(7, "activities.Organization.acme.x", activity(7, "al", "al scaled web")),
    Watched(8, "activities.Organization.acme.x", activity(8, "bob@example.com", "bob edited")),
    Watched(12, "activities.Organization.acme.x", activity(9, "carol", "carol deleted web")),
]


class FakeEntry:
    def __init__(self, value: bytes, revision: int) -> None:
        self.value = value
        self.revision = revision


class FakeKV:
    """The two calls ``policy list`` makes on a NATS KV bucket."""

    policies = {  # noqa: RUF012
        "deployments": {
            "apiVersion": "activity.miloapis.com/v1alpha1",
            "kind": "ActivityPolicy",
            "metadata": {"name": "deployments"},
            "spec": {
                "resource": {"apiGroup": "apps", "kind": "Deployment"},
                "auditRules": [{"name": "a"}, {"name": "b"}],
                "eventRules": [{"name": "c"}],
            },
        },
        "nodes": {
            "apiVersion": "activity.miloapis.com/v1alpha1",
            "kind": "ActivityPolicy",
            "metadata": {"name": "nodes"},
            "spec": {"resource": {"apiGroup": "", "kind": "Node"}, "auditRules": [{"name": "a"}]},
        },
    }

    async def keys(self) -> list[str]:
        return list(self.policies)

    async def get(self, key: str) -> FakeEntry:
        return FakeEntry(orjson.dumps(self.policies[key]), 3)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of an empty, migrated chDB store."""
    url = f"chdb://{tmp_path_factory.mktemp('store') / 'chdb'}"
    assert main(["migrate", "--clickhouse-url", url]) == 0
    return url


@pytest.fixture
def no_servers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fakes for the NATS calls; the data directory (token keys) in ``tmp_path``."""
    import processor.commands.dlq as dlq
    import processor.commands.policy as policy
    import processor.query.watch as watch_module

    async def fake_watch(url: str, spec: Any, limit: int = 0) -> AsyncIterator[Watched]:
        for item in WATCHED[: limit or None]:
            yield item

    async def with_kv(args: Any, fn: Any) -> Any:
        return await fn(FakeKV())

    async def with_js(url: str, fn: Any) -> Any:
        return {"audit.k8s.activity": 3, "events.default": 12}

    monkeypatch.setattr(watch_module, "watch", fake_watch)
    monkeypatch.setattr(policy, "_with_kv", with_kv)
    monkeypatch.setattr(dlq, "_with_js", with_js)
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path / "data"))
    for name in ("ACTIVITY_TOKEN_KEYS", "ACTIVITY_TOKEN_KEY_FILE", "ACTIVITY_CLICKHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def argv_of(name: str, store: str, *extra: str) -> list[str]:
    return [*name.split(), *(store if a == STORE else a for a in OUTPUT_COMMANDS[name]), *extra]


@pytest.mark.parametrize("name", sorted(OUTPUT_COMMANDS))
def test_help_lists_the_formats_and_the_default(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, [*name.split(), "--help"])
    assert code == 0
    text = " ".join(out.split())
    assert "-o {table,wide,json,yaml" in text, text
    assert "(default: table)" in text, text


@pytest.mark.usefixtures("no_servers")
@pytest.mark.parametrize("name", sorted(OUTPUT_COMMANDS))
def test_json_output_parses(name: str, store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, argv_of(name, store, "-o", "json"))
    assert code == 0, err
    if name == "watch":  # a stream: one object per line
        docs = [orjson.loads(line) for line in out.splitlines()]
        assert [d["metadata"]["resourceVersion"] for d in docs] == ["7", "8"]
    else:
        assert isinstance(orjson.loads(out), dict | list)


@pytest.mark.usefixtures("no_servers")
@pytest.mark.parametrize("name", sorted(OUTPUT_COMMANDS))
def test_yaml_output_parses(name: str, store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, argv_of(name, store, "-o", "yaml"))
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d is not None]
    assert len(docs) == (2 if name == "watch" else 1)


@pytest.mark.usefixtures("no_servers")
@pytest.mark.parametrize("output", ["table", "wide"])
@pytest.mark.parametrize("name", sorted(OUTPUT_COMMANDS))
def test_table_and_wide_are_accepted(
    name: str, output: str, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, argv_of(name, store, "-o", output))
    assert code == 0, err


def test_version_json(capsys: pytest.CaptureFixture[str]) -> None:
    from processor import __version__
    from processor.native import implementation

    code, out, _ = run(capsys, ["version", "-o", "json"])
    assert code == 0
    assert orjson.loads(out) == {"version": __version__, "implementation": implementation()}


def test_lint_json_lists_the_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: activity.miloapis.com/v1alpha1\nkind: ActivityPolicy\n"
        "metadata: {name: bad}\nspec:\n  resource: {apiGroup: apps, kind: Deployment}\n"
        "  auditRules:\n  - name: r\n    match: audit.verb\n    summary: x\n"
    )
    code, out, err = run(capsys, ["lint", str(bad), "-o", "json"])
    assert code == 1
    doc = orjson.loads(out)
    assert doc["kind"] == "List"
    assert [f["severity"] for f in doc["items"]] == ["warning", "error"]  # source order
    error = doc["items"][1]
    assert (error["file"], error["line"], error["column"]) == (str(bad), 8, 5)
    assert error["policy"] == "bad" and error["field"] == "spec.auditRules[0].match"
    assert error["message"].startswith("Invalid value")
    assert "1 error(s), 1 warning(s)" in err  # the summary stays on stderr


# -- tables: a header row and aligned columns -------------------------------------------------
def columns_line_up(lines: list[str], headers: list[str], cells: list[list[str]]) -> None:
    """The header row is ``headers``, and each row's cell i starts where header i starts."""
    assert lines[0].split() == " ".join(headers).split()
    starts = [lines[0].index(name) for name in headers]
    assert starts == sorted(starts)
    for line, row in zip(lines[1:], cells, strict=True):
        for start, cell in zip(starts, row, strict=True):
            assert line[start : start + len(cell)] == cell, (line, cell)


@pytest.mark.usefixtures("no_servers")
def test_watch_table_has_headers_and_aligned_columns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, ["watch"])
    assert code == 0
    columns_line_up(
        out.splitlines(),
        ["SEQ", "TIME", "ACTOR", "SOURCE", "SUMMARY"],
        [
            ["7", "2026-11-20T09:00:07Z", "al", "human", "al scaled web"],
            ["8", "2026-11-20T09:00:08Z", "bob@example.com", "human", "bob edited"],
            ["12", "2026-11-20T09:00:09Z", "carol", "human", "carol deleted web"],
        ],
    )
    code, out, _ = run(capsys, ["watch", "-o", "wide"])
    header = out.splitlines()[0].split()
    assert header[:2] == ["SEQ", "TIME"] and {"RESOURCE", "TENANT", "ORIGIN"} <= set(header)
    assert "prod/Deployment/web" in out.splitlines()[1]
    code, out, _ = run(capsys, ["watch", "--no-headers"])
    assert out.splitlines()[0].startswith("7 ")


def test_stream_table_widens_for_long_cells_and_escapes() -> None:
    out = io.StringIO()
    table = StreamTable(["A", "B", "C"], out, min_widths=[2])
    table.write(["1", "x", "last"])
    table.write(["22222", "y\nz", "end"])
    lines = out.getvalue().splitlines()
    assert lines == ["A    B   C", "1    x   last", "22222   y\\nz   end"]


@pytest.mark.usefixtures("no_servers")
def test_policy_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, ["policy", "list"])
    assert code == 0
    columns_line_up(
        out.splitlines(),
        ["NAME", "RESOURCE", "AUDIT RULES", "EVENT RULES"],
        [["deployments", "Deployment.apps", "2", "1"], ["nodes", "Node", "1", "0"]],
    )
    code, out, _ = run(capsys, ["policy", "list", "-o", "wide"])
    assert out.splitlines()[0].split()[-1] == "REVISION" and out.splitlines()[1].endswith("3")
    code, out, _ = run(capsys, ["policy", "list", "-o", "json"])
    assert [p["metadata"]["name"] for p in orjson.loads(out)["items"]] == ["deployments", "nodes"]


@pytest.mark.usefixtures("no_servers")
def test_dlq_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, ["dlq", "list"])
    assert code == 0
    columns_line_up(
        out.splitlines(),
        ["SUBJECT", "DEAD LETTERS"],
        [["audit.k8s.activity", "3"], ["events.default", "12"]],
    )
    assert err == "15 dead letters\n"
    code, out, _ = run(capsys, ["dlq", "list", "-o", "json"])
    assert orjson.loads(out)["items"][1] == {"subject": "events.default", "count": 12}
