"""Evaluate a filter tree on a JSON document client-side (``activity watch``).

Field values are read from the document at the column's JSON path with the meaning of the
MATERIALIZED columns: a missing or non-scalar value is ``""`` (``0`` for numbers), times are
parsed to epoch nanoseconds, so a filter selects the same records live as it does in SQL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from processor.query.errors import TimeRangeError
from processor.query.filter import (
    BoolConst,
    Compare,
    Const,
    Expr,
    Field,
    InList,
    Logic,
    Negate,
    Operand,
    StrTest,
)
from processor.query.timeparse import parse_rfc3339

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def field_value(doc: Mapping[str, Any], field: Field) -> str | int:
    """The value of ``field`` in ``doc`` as its column would hold it."""
    value: Any = doc
    for key in field.column.path:
        value = value.get(key) if isinstance(value, Mapping) else None
    kind = field.column.kind
    if kind == "int":
        try:
            return int(value) if value is not None and not isinstance(value, bool) else 0
        except (TypeError, ValueError):
            return 0
    if kind == "time":
        try:
            return parse_rfc3339(value) if isinstance(value, str) else 0
        except TimeRangeError:
            return 0
    if isinstance(value, str):
        return value.lower() if kind == "uuid" else value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _value(doc: Mapping[str, Any], operand: Operand) -> Any:
    if isinstance(operand, Field):
        return field_value(doc, operand)
    if operand.kind == "uuid":
        text = str(operand.value).replace("-", "").lower()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return operand.value


def matches(expr: Expr | None, doc: Mapping[str, Any]) -> bool:
    """Whether ``doc`` satisfies ``expr`` (``None`` matches everything)."""
    if expr is None:
        return True
    if isinstance(expr, Logic):
        if expr.op == "and":
            return matches(expr.left, doc) and matches(expr.right, doc)
        return matches(expr.left, doc) or matches(expr.right, doc)
    if isinstance(expr, Negate):
        return not matches(expr.operand, doc)
    if isinstance(expr, BoolConst):
        return expr.value
    if isinstance(expr, Compare):
        return _OPS[expr.op](_value(doc, expr.left), _value(doc, expr.right))
    if isinstance(expr, InList):
        value = _value(doc, expr.operand)
        return any(value == _value(doc, item) for item in expr.items)
    if isinstance(expr, StrTest):
        target = str(_value(doc, expr.target))
        arg = str(_value(doc, expr.arg))
        if expr.method == "startsWith":
            return target.startswith(arg)
        if expr.method == "endsWith":
            return target.endswith(arg)
        return arg in target
    raise TypeError(f"not a filter node: {expr!r}")


__all__ = ["Const", "field_value", "matches"]
