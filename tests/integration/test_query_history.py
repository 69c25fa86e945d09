"""``activity history``: one object's changes from stored audit logs, oldest first, with diffs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor import cli
from processor.query.history import fetch_changes, render
from processor.query.timeparse import NS, format_rfc3339
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate

pytestmark = pytest.mark.integration

T0 = time.time_ns() - 3 * 3600 * NS


def deployment(replicas: int, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod", "uid": "d-1", "resourceVersion": "9",
                     "generation": 3, "managedFields": [{"manager": "kubectl"}],
                     "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": image}]}}},
        "status": {"readyReplicas": replicas},
    }  # fmt: skip


def audit(n: int, verb: str, code: int, obj: Any, name: str = "web", ns: str = "prod") -> bytes:
    event = {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Event",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "verb": verb,
        "user": {"username": f"user-{n}@example.com"},
        "objectRef": {"resource": "deployments", "apiGroup": "apps", "namespace": ns, "name": name},
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": format_rfc3339(T0 + n * 60 * NS, 6),
    }
    if obj is not None:
        event["responseObject"] = obj
    return orjson.dumps(event)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[ChdbSink]:
    s = ChdbSink(tmp_path / "chdb")
    try:
        migrate(s)
        s.open()
        rows = [
            audit(5, "delete", 200, {"kind": "Status", "status": "Success"}),
            audit(1, "create", 201, deployment(1, "web:1")),
            audit(2, "get", 200, deployment(1, "web:1")),
            audit(3, "patch", 200, deployment(3, "web:2")),
            audit(4, "update", 409, {"kind": "Status", "code": 409}),
            audit(6, "create", 201, deployment(1, "x"), name="other"),
            audit(7, "create", 201, deployment(1, "x"), ns="dev"),
        ]
        s.insert("audit_logs", rows, "history")
        s.insert("audit_logs", rows[:2], "history-redelivered")
        yield s
    finally:
        s.close()


def test_changes_oldest_first(sink: ChdbSink) -> None:
    changes = fetch_changes(sink, "deployments", "web", "prod", start="now-1d")
    assert [(c.verb, c.status) for c in changes] == [
        ("create", 201), ("patch", 200), ("update", 409), ("delete", 200),
    ]  # fmt: skip
    assert [c.user for c in changes] == [f"user-{n}@example.com" for n in (1, 3, 4, 5)]
    assert changes[2].object is None and changes[3].object is None
    assert len(fetch_changes(sink, "deployments", "web", start="now-1d")) == 5  # any namespace


def test_diff_report(sink: ChdbSink) -> None:
    lines = list(render(fetch_changes(sink, "deployments", "web", "prod", start="now-1d")))
    text = "\n".join(lines)
    assert "Created resource" in text
    assert "Changes: spec" in text
    assert '-    "replicas": 1' in text and '+    "replicas": 3' in text
    assert any(line.startswith("+") and '"image": "web:2"' in line for line in lines)
    assert "--- Previous" in text and "+++ Current" in text
    assert "managedFields" not in text and "resourceVersion" not in text
    assert "Request failed" in text and "Deleted resource" in text
    assert "\033[" not in text
    colored = "\n".join(render(fetch_changes(sink, "deployments", "web", "prod", start="now-1d"),
                               color=True))  # fmt: skip
    assert "\033[32m+" in colored


REGISTRARS = [
    "processor.commands.query:register",
    "processor.commands.query:register_audit",
    "processor.commands.query:register_events",
    "processor.commands.query:register_facets",
    "processor.commands.history:register",
    "processor.commands.watch:register",
]


def with_registrars(monkeypatch: pytest.MonkeyPatch) -> None:
    """The query commands in the CLI (until cli.SUBCOMMANDS lists them)."""
    missing = [r for r in REGISTRARS if r not in cli.SUBCOMMANDS]
    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, *missing])


def test_cli(
    sink: ChdbSink, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_registrars(monkeypatch)
    url = f"chdb://{sink.path}"
    sink.close()  # the command opens its own session on the directory
    code = cli.main(["history", "deployments", "web", "-n", "prod", "--clickhouse-url", url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0].split() == ["TIME", "VERB", "USER", "STATUS"]
    assert [line.split()[1] for line in out.splitlines()[1:]] == [
        "create", "patch", "update", "delete",
    ]  # fmt: skip
    assert "Total: 4 changes" in err
