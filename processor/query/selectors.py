"""Event field selectors (``k=v,k2!=v2``; upstream grammar, docs/design.md#storage-query-3-3) ->
filter tree.

Terms are comma separated; each is checked for ``!=``, then ``==``, then ``=``; keys and values are
trimmed and values are raw text (no quoting). The result is the same filter tree CEL filters
produce, so it is rendered with typed parameters like every other condition.
"""

from __future__ import annotations

from processor.query.errors import FilterError
from processor.query.filter import Compare, Const, Expr, Field, Logic
from processor.query.tables import Table


def compile_selector(text: str | None, table: Table) -> Expr | None:
    """Translate a field selector for ``table`` (``None`` when empty).

    Raises:
        FilterError: a term without an operator or with an unsupported key.
    """
    if text is None or not text.strip():
        return None
    result: Expr | None = None
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        for token in ("!=", "==", "="):
            key, sep, value = term.partition(token)
            if sep:
                break
        else:
            raise FilterError(
                f"invalid field selector syntax: {term!r} (expected field=value or field!=value)"
            )
        key = key.strip()
        column = table.selectors.get(key)
        if column is None:
            raise FilterError(
                f"unsupported field selector: {key}. Supported fields: "
                + ", ".join(sorted(table.selectors))
            )
        op = "!=" if sep == "!=" else "=="
        cond = Compare(op, Field(key, column), Const("string", value.strip()))
        result = cond if result is None else Logic("and", result, cond)
    return result
