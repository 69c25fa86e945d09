"""Query output helpers: ages, escaping of stored text in tables, history diffs."""

from __future__ import annotations

import io

import orjson

from processor.query.history import Change, changed_fields, clean, render, unified_diff
from processor.query.output import age, format_rows, print_items, safe, table_lines, truncate
from processor.query.timeparse import parse_rfc3339

NOW = parse_rfc3339("2026-11-20T10:00:00Z")


def test_age() -> None:
    assert age("2026-11-20T09:59:55Z", NOW) == "5s ago"
    assert age("2026-11-20T09:55:00.5Z", NOW) == "4m ago"
    assert age("2026-11-20T07:00:00Z", NOW) == "3h ago"
    assert age("2026-11-19T09:00:00Z", NOW) == "25h ago"
    assert age("2026-11-17T10:00:00Z", NOW) == "3d ago"
    assert age("2026-11-20T10:00:05Z", NOW) == "0s ago"  # clock skew
    assert age("garbage", NOW) == "garbage"


def test_control_characters_are_escaped() -> None:
    assert safe("a\nb\tc\x1b[31md") == "a\\nb\\tc\\x1b[31md"
    assert truncate("x" * 100, 10) == "xxxxxxx..."
    lines = format_rows([["A", "B"], ["multi\nline", "\x1b]0;title\x07"]])
    assert len(lines) == 2 and "\x1b" not in lines[1] and "\n" not in lines[1]


ACTIVITY = {
    "metadata": {"creationTimestamp": "2026-11-20T09:00:00.000Z"},
    "spec": {
        "summary": "alice scaled web",
        "changeSource": "human",
        "actor": {"name": "alice"},
        "resource": {"kind": "Deployment", "name": "web", "namespace": "prod"},
        "tenant": {"type": "Organization", "name": "acme"},
        "origin": {"type": "audit"},
    },
}


def test_tables() -> None:
    lines = table_lines("activities", [ACTIVITY], relative=True, now_ns=NOW)
    assert lines[0].split() == ["TIME", "ACTOR", "SOURCE", "SUMMARY"]
    assert lines[1].split()[:4] == ["1h", "ago", "alice", "human"]
    wide = table_lines("activities", [ACTIVITY], wide=True)
    assert "prod/Deployment/web" in wide[1] and "Organization/acme" in wide[1]
    assert wide[1].startswith("2026-11-20T09:00:00.000Z")
    out = io.StringIO()
    print_items("activities", [ACTIVITY], "json", out)
    assert orjson.loads(out.getvalue()) == {"apiVersion": "v1", "kind": "List", "items": [ACTIVITY]}
    out = io.StringIO()
    print_items("activities", [ACTIVITY], "table", out, headers=False)
    assert out.getvalue().startswith("2026-11-20T09:00:00.000Z")  # not a terminal: absolute


def test_history_helpers() -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {"name": "c", "uid": "u", "resourceVersion": "1", "labels": {"a": "b"}},
        "data": {"k": "v"},
        "managedFields": [],
        "status": {},
    }
    assert clean(obj) == {
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "b"}},
        "data": {"k": "v"},
        "status": {},
    }
    assert changed_fields({"a": 1, "status": 1}, {"a": 1, "status": 2}) == "metadata only"
    assert changed_fields({"a": 1, "b": 1}, {"a": 2}) == "a, b (removed)"
    assert changed_fields({}, {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}) == (
        "a, b, c and 2 more fields"
    )
    diff = unified_diff({"data": {"k": "v"}}, {"data": {"k": "w"}})
    assert diff[:2] == ["--- Previous", "+++ Current"]
    assert '-    "k": "v"' in diff and '+    "k": "w"' in diff
    changes = [
        Change("t1", "create", "alice", 201, {"data": {"k": "v"}}),
        Change("t2", "update", "bob", 200, {"data": {"k": "v"}}),
        Change("t3", "delete", "bob", 200, None),
    ]
    text = "\n".join(render(changes))
    assert "Change #1   create   [201]" in text
    assert "Changes: metadata only" in text and "(no changes)" in text
    assert "Deleted resource" in text
