"""``activity history``: every change to one object from the stored audit logs, oldest first.

Changes are the ``create``, ``update``, ``patch`` and ``delete`` audit events of the object
(resource + name [+ namespace]). With ``--diff`` each version (the ``responseObject`` of a
successful request) is compared with the previous one: a unified diff of the cleaned objects
(``metadata`` reduced to name, namespace, labels, annotations; ``managedFields``,
``resourceVersion``, ``generation``, ``uid`` dropped), as the upstream CLI prints it. Failed
requests (status >= 400) are listed but are not versions.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from processor.query.filter import Compare, Const, Expr, Field, InList, Logic
from processor.query.service import Backend
from processor.query.sql import DATABASE, Select
from processor.query.tables import AUDIT_LOGS
from processor.query.timeparse import DEFAULT_MAX_WINDOW_NS, resolve_window

VERBS = ("create", "update", "patch", "delete")
MAX_CHANGES = 1000


@dataclass(frozen=True)
class Change:
    """One change: who did what when, and the object after it (``None`` if unknown/failed)."""

    timestamp: str
    verb: str
    user: str
    status: int
    object: dict[str, Any] | None


def _field(path: str) -> Field:
    return Field(path, AUDIT_LOGS.fields[path])


def history_filter(resource: str, name: str, namespace: str = "") -> Expr:
    """The filter tree selecting the changes of one object."""
    expr: Expr = Logic(
        "and",
        Compare("==", _field("objectRef.resource"), Const("string", resource)),
        Compare("==", _field("objectRef.name"), Const("string", name)),
    )
    verbs = InList(_field("verb"), tuple(Const("string", v) for v in VERBS))
    expr = Logic("and", expr, verbs)
    if namespace:
        ns = Compare("==", _field("objectRef.namespace"), Const("string", namespace))
        expr = Logic("and", expr, ns)
    return expr


def fetch_changes(
    backend: Backend,
    resource: str,
    name: str,
    namespace: str = "",
    start: str = "now-30d",
    end: str = "now",
    limit: int = MAX_CHANGES,
    max_window_ns: int = DEFAULT_MAX_WINDOW_NS,
) -> list[Change]:
    """The object's changes in the window, oldest first (at most ``limit``).

    Raises:
        QueryError: a bad time or window.
    """
    window = resolve_window(start, end, time.time_ns(), max_window_ns)
    select = Select(AUDIT_LOGS, getattr(backend, "database", DATABASE))
    select.window(window.start, window.end)
    select.filter(history_filter(resource, name, namespace))
    sql = select.page_sql(limit, "final", ascending=True)
    rows = backend.query(sql, select.params.values)
    return [to_change(orjson.loads(row["doc"])) for row in rows]


def to_change(event: Mapping[str, Any]) -> Change:
    """A :class:`Change` from an audit event."""
    status = event.get("responseStatus") or {}
    code = status.get("code") if isinstance(status, Mapping) else None
    code = int(code) if isinstance(code, int | float) else 0
    obj = event.get("responseObject")
    if not isinstance(obj, dict) or obj.get("kind") == "Status" or code >= 400:
        obj = None
    user = event.get("user") or {}
    return Change(
        timestamp=str(event.get("requestReceivedTimestamp") or ""),
        verb=str(event.get("verb") or ""),
        user=str(user.get("username", "")) if isinstance(user, Mapping) else "",
        status=code,
        object=obj,
    )


def clean(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without bookkeeping fields (upstream ``history --diff`` cleaning)."""
    out = {
        k: v
        for k, v in obj.items()
        if k not in ("managedFields", "resourceVersion", "generation", "uid")
    }
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        out["metadata"] = {
            k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta
        }
    return out


def changed_fields(previous: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """``spec, data`` / ``x (removed)`` / ``a, b, c and 2 more fields`` / ``metadata only``."""
    names = [
        k
        for k in sorted(set(previous) | set(current))
        if k not in ("status", "metadata") and previous.get(k) != current.get(k)
    ]
    labels = [f"{k} (removed)" if k not in current else k for k in names]
    if not labels:
        return "metadata only"
    if len(labels) > 3:
        return ", ".join(labels[:3]) + f" and {len(labels) - 3} more fields"
    return ", ".join(labels)


def unified_diff(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Unified diff lines (3 lines of context) of two objects as sorted, indented JSON."""
    a = _pretty(previous).splitlines()
    b = _pretty(current).splitlines()
    return list(difflib.unified_diff(a, b, "Previous", "Current", n=3, lineterm=""))


def _pretty(obj: Mapping[str, Any]) -> str:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


RED, GREEN, CYAN, BOLD, RESET = "\033[31m", "\033[32m", "\033[36m", "\033[1m", "\033[0m"


def render(changes: list[Change], color: bool = False) -> Iterator[str]:
    """The ``--diff`` report, line by line."""
    previous: dict[str, Any] | None = None
    for number, change in enumerate(changes, 1):
        yield from _header(number, change, color)
        current = clean(change.object) if change.object is not None else None
        if change.status >= 400:
            yield "Request failed: the object was not changed"
        elif current is None and change.verb == "delete":
            yield "Deleted resource"
            if previous is not None:
                yield _pretty(previous)
            previous = None
        elif current is None:
            yield "(no object recorded for this change)"
        elif previous is None:
            yield "Created resource" if change.verb == "create" else "Initial state"
            yield _pretty(current)
            previous = current
        else:
            yield f"Changes: {changed_fields(previous, current)}"
            lines = unified_diff(previous, current)
            yield from (_paint(line, color) for line in lines) if lines else ["(no changes)"]
            previous = current
        yield ""


def _header(number: int, change: Change, color: bool) -> Iterator[str]:
    status = f"[{change.status}]" if change.status else ""
    if color and change.status >= 400:
        status = RED + status + RESET
    title = f"Change #{number:<3} {change.verb:<8} {status}"
    yield "╭" + "─" * 60 + "╮"
    yield "│ " + (BOLD + title + RESET if color else title)
    yield "│ " + change.timestamp
    yield "│ " + change.user
    yield "╰" + "─" * 60 + "╯"


def _paint(line: str, color: bool) -> str:
    if not color:
        return line
    if line.startswith(("+++", "---")):
        return BOLD + line + RESET
    if line.startswith("+"):
        return GREEN + line + RESET
    if line.startswith("-"):
        return RED + line + RESET
    if line.startswith("@@"):
        return CYAN + line + RESET
    return line
