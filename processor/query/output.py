"""Printing query results: tables for people (relative ages in a terminal), JSON/YAML for scripts.

``table`` and ``wide`` print one row per record with columns per table; in a terminal times are
ages (``5m ago``), when piped they are RFC3339 so output stays stable and sortable. ``json`` and
``yaml`` print one list object (``{"apiVersion": "v1", "kind": "List", "items": [...]}``).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from processor.output import dump
from processor.query.errors import TimeRangeError
from processor.query.timeparse import NS, parse_rfc3339

FORMATS = ("table", "wide", "json", "yaml")
# Control characters in stored values are shown escaped: a newline must not break a row and an
# ESC must not reach the terminal (stored text is user input).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {9: "\\t", 10: "\\n", 13: "\\r"}
_SUMMARY_WIDTH = 80


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal, with ``NO_COLOR`` unset and a real ``TERM``."""
    term = os.environ.get("TERM", "")
    return is_terminal(stream) and "NO_COLOR" not in os.environ and term not in ("", "dumb")


def age(timestamp: str, now_ns: int | None = None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``4d ago`` (the timestamp itself if unparsable)."""
    try:
        then = parse_rfc3339(timestamp)
    except TimeRangeError:
        return timestamp
    seconds = max(0, ((time.time_ns() if now_ns is None else now_ns) - then) // NS)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit == "d" else 1):
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def truncate(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters with ``...``; control characters escaped."""
    text = safe(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _get(doc: Mapping[str, Any], *path: str) -> str:
    value: Any = doc
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


Column = tuple[str, Callable[[Mapping[str, Any]], str]]


def _activity_columns(wide: bool) -> list[Column]:
    cols: list[Column] = [
        ("TIME", lambda d: _get(d, "metadata", "creationTimestamp")),
        ("ACTOR", lambda d: _get(d, "spec", "actor", "name")),
        ("SOURCE", lambda d: _get(d, "spec", "changeSource")),
        ("SUMMARY", lambda d: truncate(_get(d, "spec", "summary"), _SUMMARY_WIDTH)),
    ]
    if wide:
        cols[3] = ("SUMMARY", lambda d: _get(d, "spec", "summary"))
        cols += [
            ("RESOURCE", lambda d: _resource(d)),
            ("TENANT", lambda d: _tenant(d)),
            ("ORIGIN", lambda d: _get(d, "spec", "origin", "type")),
        ]
    return cols


def _resource(doc: Mapping[str, Any]) -> str:
    ns = _get(doc, "spec", "resource", "namespace")
    kind_name = f"{_get(doc, 'spec', 'resource', 'kind')}/{_get(doc, 'spec', 'resource', 'name')}"
    return f"{ns}/{kind_name}" if ns else kind_name


def _tenant(doc: Mapping[str, Any]) -> str:
    kind, name = _get(doc, "spec", "tenant", "type"), _get(doc, "spec", "tenant", "name")
    return f"{kind}/{name}" if name else kind or "platform"


def _audit_columns(wide: bool) -> list[Column]:
    cols: list[Column] = [
        ("TIME", lambda d: _get(d, "requestReceivedTimestamp")),
        ("VERB", lambda d: _get(d, "verb")),
        ("USER", lambda d: _get(d, "user", "username")),
        ("RESOURCE", lambda d: _audit_resource(d)),
        ("STATUS", lambda d: _get(d, "responseStatus", "code")),
    ]
    if wide:
        cols += [("AUDIT ID", lambda d: _get(d, "auditID"))]
    return cols


def _audit_resource(doc: Mapping[str, Any]) -> str:
    parts = [_get(doc, "objectRef", k) for k in ("namespace", "resource", "name")]
    return "/".join(p for p in parts if p)


def _event_columns(wide: bool) -> list[Column]:
    cols: list[Column] = [
        ("LAST SEEN", lambda d: _event_time(d)),
        ("TYPE", lambda d: _get(d, "type")),
        ("REASON", lambda d: _get(d, "reason")),
        ("OBJECT", lambda d: _event_object(d)),
        ("MESSAGE", lambda d: truncate(_get(d, "note"), _SUMMARY_WIDTH)),
    ]
    if wide:
        cols[4] = ("MESSAGE", lambda d: _get(d, "note"))
        cols += [("SOURCE", lambda d: _get(d, "reportingController"))]
    return cols


def _event_time(doc: Mapping[str, Any]) -> str:
    for path in (("series", "lastObservedTime"), ("deprecatedLastTimestamp",), ("eventTime",)):
        value = _get(doc, *path)
        if value:
            return value
    return _get(doc, "metadata", "creationTimestamp")


def _event_object(doc: Mapping[str, Any]) -> str:
    ns = _get(doc, "regarding", "namespace")
    obj = f"{_get(doc, 'regarding', 'kind')}/{_get(doc, 'regarding', 'name')}"
    return f"{ns}/{obj}" if ns else obj


COLUMNS: dict[str, Callable[[bool], list[Column]]] = {
    "activities": _activity_columns,
    "audit_logs": _audit_columns,
    "k8s_events": _event_columns,
}


def table_lines(
    table: str,
    items: Sequence[Mapping[str, Any]],
    wide: bool = False,
    relative: bool = False,
    headers: bool = True,
    now_ns: int | None = None,
) -> list[str]:
    """Rows of ``items`` as aligned text lines (first column is the time)."""
    columns = COLUMNS[table](wide)
    rows = [[get(item) for _, get in columns] for item in items]
    if relative:
        for row in rows:
            row[0] = age(row[0], now_ns)
    if headers:
        rows.insert(0, [name for name, _ in columns])
    return format_rows(rows)


def safe(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``) for a table cell."""
    return text.translate(_CONTROL)


def format_rows(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by three spaces (the last column is not padded)."""
    if not rows:
        return []
    rows = [[safe(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        out.append("   ".join(cells).rstrip())
    return out


class StreamTable:
    """Rows printed as they arrive (``activity watch``): a header row, then aligned columns.

    Widths cannot be known before the rows are, so each column starts as wide as its header or
    its minimum width, whichever is larger, and widens when a longer cell arrives (rows already
    printed stay as they are). The last column is not padded.
    """

    def __init__(
        self,
        headers: Sequence[str],
        stream: IO[str],
        min_widths: Sequence[int] = (),
        show_headers: bool = True,
    ) -> None:
        self.headers = list(headers)
        self.stream = stream
        self.widths = [
            max(len(h), min_widths[i] if i < len(min_widths) else 0)
            for i, h in enumerate(self.headers)
        ]
        self._pending_headers = show_headers

    def write(self, row: Sequence[str]) -> None:
        """Print ``row`` (after the header row, before the first one); control chars escaped."""
        cells = [safe(cell) for cell in row]
        for i, cell in enumerate(cells[:-1]):
            self.widths[i] = max(self.widths[i], len(cell))
        lines = [cells]
        if self._pending_headers:
            lines.insert(0, self.headers)
            self._pending_headers = False
        for line in lines:
            padded = [cell.ljust(self.widths[i]) for i, cell in enumerate(line[:-1])]
            self.stream.write("   ".join([*padded, line[-1]]).rstrip() + "\n")
        self.stream.flush()


def print_items(
    table: str,
    items: Sequence[Mapping[str, Any]],
    fmt: str,
    stream: IO[str] | None = None,
    headers: bool = True,
) -> None:
    """Print ``items`` in ``fmt`` (``table``, ``wide``, ``json``, ``yaml``)."""
    out = stream or sys.stdout
    if fmt in ("json", "yaml"):
        out.write(dump({"apiVersion": "v1", "kind": "List", "items": list(items)}, fmt))
        return
    lines = table_lines(table, items, fmt == "wide", is_terminal(out), headers)
    if lines:
        out.write("\n".join(lines) + "\n")
