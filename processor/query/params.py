"""Typed server-side query parameters: ``{p0:String}`` in the SQL, the value beside it.

Values are encoded as ClickHouse reads query-parameter text (the HTTP ``param_<name>`` form,
also what chDB takes): scalars in the *escaped* text format (backslash, tab, newline... escaped),
arrays as a quoted literal ``['a','b\\'c']``. Names are generated (``p0``, ``p1``...), types come
from a fixed set, so no user text ever reaches the SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence

from processor.query.timeparse import clickhouse_time

#: kind -> ClickHouse parameter type
PARAM_TYPES = {
    "string": "String",
    "uuid": "UUID",
    "int": "Int64",
    "double": "Float64",
    "time": "DateTime64(9, 'UTC')",
}
_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "\b": "\\b", "\f": "\\f"}
)


def escape_text(value: str) -> str:
    """A string in ClickHouse's escaped text format (TSV escaping)."""
    return value.translate(_ESCAPES)


def quote_text(value: str) -> str:
    """A string as a quoted ClickHouse literal inside an array parameter."""
    return "'" + escape_text(value).replace("'", "\\'") + "'"


def encode_scalar(kind: str, value: str | int | float) -> str:
    """One value of ``kind`` in parameter text form."""
    if kind == "time":
        return clickhouse_time(int(value))
    if kind in ("int", "double"):
        return repr(value) if isinstance(value, float) else str(int(value))
    return escape_text(str(value))


class Params:
    """Collects parameters while SQL is being built."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, kind: str, value: str | int | float, sql_type: str | None = None) -> str:
        """Register a scalar; return its placeholder ``{pN:Type}``."""
        name = f"p{len(self.values)}"
        self.values[name] = encode_scalar(kind, value)
        return "{" + f"{name}:{sql_type or PARAM_TYPES[kind]}" + "}"

    def add_array(self, kind: str, values: Sequence[str | int | float]) -> str:
        """Register an array of ``kind`` values; return its placeholder ``{pN:Array(Type)}``."""
        name = f"p{len(self.values)}"
        if kind in ("int", "double"):
            items = [encode_scalar(kind, v) for v in values]
        elif kind == "time":
            items = [quote_text(clickhouse_time(int(v))) for v in values]
        else:
            items = [quote_text(str(v)) for v in values]
        self.values[name] = "[" + ",".join(items) + "]"
        return "{" + f"{name}:Array({PARAM_TYPES[kind]})" + "}"
