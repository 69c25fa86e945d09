"""CEL filter text built from values: one quoting helper, no string interpolation.

Programs that build a filter for the query layer (PolicyPreview's autoFetch, the MCP tools) put
every value into it through :func:`cel_string` / :func:`cel_int`, and field paths only from
their own fixed sets (:func:`field_path` checks them against the table), so a value such as
``x' || true || '`` stays one string literal and cannot change the expression. The text is then
parsed and translated like a user's ``--filter`` (:mod:`processor.query.filter`).
"""

from __future__ import annotations

from collections.abc import Iterable

from processor.query.errors import QueryError
from processor.query.tables import Table

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def cel_string(value: str) -> str:
    """``value`` as a double-quoted CEL string literal (backslash escapes; ``\\u`` for other
    control characters), which :func:`processor.cel.ast.unquote` reads back unchanged."""
    out = []
    for ch in str(value):
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def cel_int(value: int) -> str:
    """An integer literal (``bool`` and other types are refused)."""
    if type(value) is not int:
        raise QueryError(f"expected an integer, got {value!r}")
    return str(value)


def field_path(table: Table, path: str) -> str:
    """``path`` if it is a filter field of ``table`` (a programming error otherwise)."""
    if path not in table.fields:
        raise ValueError(f"{path!r} is not a filter field of {table.noun}")
    return path


def equals(table: Table, path: str, value: str) -> str:
    """``path == "value"``."""
    return f"{field_path(table, path)} == {cel_string(value)}"


def all_of(terms: Iterable[str]) -> str:
    """The conjunction of the non-empty ``terms``, each parenthesised ("" when none)."""
    parts = [t for t in terms if t]
    if len(parts) == 1:
        return parts[0]
    return " && ".join(f"({t})" for t in parts)


def any_of(terms: Iterable[str]) -> str:
    """The disjunction of the non-empty ``terms``, each parenthesised ("" when none)."""
    parts = [t for t in terms if t]
    if len(parts) == 1:
        return parts[0]
    return " || ".join(f"({t})" for t in parts)
