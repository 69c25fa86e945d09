"""Render filter trees and build the SELECT statements of the query commands.

Shape of a page query (activities; the other tables differ only in names), with the default
duplicate handling (:data:`DEDUP`, ``collapse``)::

    SELECT activity_json AS doc, <sort key columns AS k0..k3>, reindex_version AS v
    FROM audit.activities
    WHERE timestamp >= {p0:DateTime64(9, 'UTC')} AND timestamp < {p1:...}
      [AND tenant_type = {p2:String} ...] [AND (<filter>)] [AND <search>]
      [AND timestamp <= {..} AND (timestamp, tenant_type, tenant_name, origin_id) < ({..}, ...)]
    ORDER BY toStartOfHour(timestamp) DESC, timestamp DESC, tenant_type DESC, ... LIMIT m

Duplicates left by redelivery (ReplacingMergeTree, before parts merge) are adjacent because the
ORDER BY is the full sort key; :func:`processor.query.service.fetch_collapsed` keeps the newest
copy (highest ``v``) of each key, reading ``m`` = n+1 rows plus room for a few copies (and again
from the last complete key when a batch ends inside a group of copies). The other modes of
:meth:`Select.page_sql` read ``LIMIT n+1``: ``final`` adds ``FINAL`` after the table name,
``limit_by`` adds ``LIMIT 1 BY`` the sort key (newest version first), ``none`` keeps every copy;
``activity history`` reads with ``final``, oldest first. The keyset condition on the full sort key
makes pages neither overlap nor skip rows, also while rows are inserted.

A query whose WHERE pins the leading columns of one of the table's :data:`PROJECTIONS` with ``=``
(one actor, one kind in one tenant, one object) is first sent with the projection settings of
:meth:`Select.page_sql` (``projection=True``): ClickHouse weighs a projection only without the
reverse-order read; without skip indexes it does not scan the table's bloom filters of the whole
window only to compare the table with the projection (projections have none); and
``max_rows_to_read`` makes it refuse, before reading, a plan whose index estimate exceeds
:data:`PROJECTION_MAX_ROWS` (a filter too dense for the projection to pay off, or parts without
it), in which case :func:`processor.query.service.fetch_rows` sends the plain query
(docs/design.md#d16).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

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
from processor.query.params import Params
from processor.query.tables import Column, Table

DATABASE = "audit"
#: Default duplicate collapsing of page queries: ``collapse`` reads without FINAL and keeps one
#: row per sort key in the client (duplicates are adjacent because the ORDER BY is the full unique
#: key), see processor.query.service. Measured in docs/query.md, "Latency (10 million activities,
#: chDB)".
DEDUP = "collapse"
DEDUP_MODES = ("collapse", "final", "limit_by", "none")
#: Projections that serve selective page queries (migration 105_activities_query_projections):
#: table -> the sets of columns a WHERE must pin with ``=`` for a projection's key to narrow the
#: read (its leading columns, before the timestamp).
PROJECTIONS: dict[str, tuple[frozenset[str], ...]] = {
    "activities": (
        frozenset({"actor_name"}),
        frozenset({"tenant_type", "tenant_name", "resource_kind"}),
        frozenset({"resource_kind", "resource_name"}),
    ),
}
#: The most rows (ClickHouse's estimate from the indexes, before reading) a query sent with the
#: projection settings may read; above it ClickHouse refuses (TOO_MANY_ROWS) and the plain query,
#: read newest first with an early stop, is sent instead.
PROJECTION_MAX_ROWS = 1_000_000
#: ClickHouse's error code for a read over ``max_rows_to_read``.
TOO_MANY_ROWS = 158
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_OPS = {"==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def render(expr: Expr, params: Params) -> str:
    """The SQL of a filter tree; literals become parameters in ``params``."""
    if isinstance(expr, Logic):
        joiner = " AND " if expr.op == "and" else " OR "
        return "(" + render(expr.left, params) + joiner + render(expr.right, params) + ")"
    if isinstance(expr, Negate):
        return "(NOT " + render(expr.operand, params) + ")"
    if isinstance(expr, BoolConst):
        return "1" if expr.value else "0"
    if isinstance(expr, Compare):
        left = _operand(expr.left, params)
        right = _operand(expr.right, params)
        return f"({left} {_OPS[expr.op]} {right})"
    if isinstance(expr, InList):
        if not expr.items:
            return "0"
        kind = _array_kind(expr.items)
        values = [item.value for item in expr.items]
        return f"({_operand(expr.operand, params)} IN {params.add_array(kind, values)})"
    if isinstance(expr, StrTest):
        target = _operand(expr.target, params, as_text=True)
        arg = params.add("string", expr.arg.value)
        if expr.method == "contains":
            return f"(position({target}, {arg}) > 0)"
        return f"{expr.method}({target}, {arg})"
    raise TypeError(f"not a filter node: {expr!r}")


def pinned_columns(expr: Expr) -> set[str]:
    """The columns ``expr`` pins to one value: ``field == literal`` terms of its top-level ANDs."""
    if isinstance(expr, Logic) and expr.op == "and":
        return pinned_columns(expr.left) | pinned_columns(expr.right)
    if isinstance(expr, Compare) and expr.op == "==":
        sides = (expr.left, expr.right)
        fields = [s for s in sides if isinstance(s, Field)]
        if len(fields) == 1 and any(isinstance(s, Const) for s in sides):
            return {fields[0].column.name}
    return set()


def _array_kind(items: Sequence[Const]) -> str:
    kinds = {item.kind for item in items}
    if kinds == {"int"}:
        return "int"
    if kinds <= {"int", "double"}:
        return "double"
    return items[0].kind


def _operand(operand: Operand, params: Params, as_text: bool = False) -> str:
    if isinstance(operand, Field):
        name = operand.column.name
        return f"toString({name})" if as_text and operand.kind == "uuid" else name
    if as_text and operand.kind == "uuid":
        return params.add("string", operand.value)
    return params.add(operand.kind, operand.value)


def check_identifier(name: str) -> str:
    """``name`` if it is a plain SQL identifier (database names come from configuration)."""
    if not _IDENT.fullmatch(name):
        raise ValueError(f"invalid database name {name!r}")
    return name


def key_expr(column: Column) -> str:
    """How a sort-key column is selected for a cursor: times as epoch ns, others as text."""
    if column.kind == "time":
        return f"toUnixTimestamp64Nano({column.name})"
    if column.kind == "uuid":
        return f"toString({column.name})"
    return column.name


@dataclass
class Select:
    """A page query being built: WHERE terms and parameters."""

    table: Table
    database: str = DATABASE
    params: Params = field(default_factory=Params)
    where: list[str] = field(default_factory=list)
    pinned: set[str] = field(default_factory=set)

    def window(self, start_ns: int, end_ns: int) -> None:
        """``start <= time < end`` on the table's time column."""
        col = self.table.time_column
        self.where.append(f"{col} >= {self.params.add('time', start_ns)}")
        self.where.append(f"{col} < {self.params.add('time', end_ns)}")

    def equals(self, column: str, value: str) -> None:
        """``column = value`` (column names come from :mod:`processor.query.tables` only)."""
        self.where.append(f"{column} = {self.params.add('string', value)}")
        self.pinned.add(column)

    def filter(self, expr: Expr | None) -> None:
        """AND a filter tree."""
        if expr is not None:
            self.where.append(render(expr, self.params))
            self.pinned |= pinned_columns(expr)

    def search(self, terms: Sequence[str]) -> None:
        """Any of ``terms`` in the summary, substring, case-insensitive (upstream semantics)."""
        if terms:
            arr = self.params.add_array("string", list(terms))
            self.where.append(f"multiSearchAnyCaseInsensitiveUTF8(summary, {arr})")

    def after(self, key: Sequence[str | int]) -> None:
        """Keyset condition: rows strictly after ``key`` in newest-first order."""
        cols = self.table.sort_key
        placeholders = [
            self.params.add("time", int(value))
            if col.kind == "time"
            else self.params.add("string", str(value), col.sql_type)
            for col, value in zip(cols, key, strict=True)
        ]
        self.where.append(f"{cols[0].name} <= {placeholders[0]}")
        names = ", ".join(c.name for c in cols)
        self.where.append(f"({names}) < ({', '.join(placeholders)})")

    def projection(self, dedup: str = DEDUP) -> bool:
        """Whether a projection may serve this query: its key's leading columns are pinned.

        Not with ``final``: ClickHouse reads no projection with ``FINAL``.
        """
        keys = PROJECTIONS.get(self.table.name, ())
        return dedup != "final" and any(key <= self.pinned for key in keys)

    def page_sql(
        self, limit: int, dedup: str = DEDUP, ascending: bool = False, projection: bool = False
    ) -> str:
        """The SELECT of one page of ``limit`` rows, newest first.

        Args:
            limit: rows to fetch.
            dedup: how duplicates left by redelivery are collapsed: ``final`` (``FINAL``),
                ``limit_by`` (``LIMIT 1 BY`` the sort key, newest version first), ``none``
                or ``collapse`` (none here, plus the version column as ``v`` so the caller
                can keep the newest copy of each key).
            ascending: oldest first instead (``activity history``).
            projection: let ClickHouse choose a projection (no reverse-order read) and refuse
                a plan estimated over :data:`PROJECTION_MAX_ROWS` rows (see the module doc).
        """
        t = self.table
        keys = ", ".join(f"{key_expr(c)} AS k{i}" for i, c in enumerate(t.sort_key))
        direction = "ASC" if ascending else "DESC"
        order = [f"toStartOfHour({t.time_column}) {direction}"]
        order += [f"{c.name} {direction}" for c in t.sort_key]
        limit_by = ""
        if dedup == "limit_by":
            if t.version_column:
                order.append(f"{t.version_column} DESC")
            limit_by = " LIMIT 1 BY " + ", ".join(c.name for c in t.sort_key)
        elif dedup == "collapse" and t.version_column:
            keys += f", {t.version_column} AS v"
        elif dedup not in DEDUP_MODES:
            raise ValueError(f"unknown dedup mode {dedup!r}")
        return (
            f"SELECT {t.json_column} AS doc, {keys} FROM {self.database}.{t.name}"
            + (" FINAL" if dedup == "final" else "")
            + self.where_sql()
            + " ORDER BY "
            + ", ".join(order)
            + limit_by
            + f" LIMIT {int(limit)}"
            + (
                " SETTINGS optimize_read_in_order = 0, use_skip_indexes = 0, "
                f"max_rows_to_read = {PROJECTION_MAX_ROWS}, read_overflow_mode = 'throw'"
                if projection
                else ""
            )
        )

    def copy(self) -> Select:
        """An independent copy (more conditions can be added to it)."""
        params = Params()
        params.values = dict(self.params.values)
        return Select(self.table, self.database, params, list(self.where), set(self.pinned))

    def where_sql(self) -> str:
        """`` WHERE a AND b`` or ``""``."""
        return " WHERE " + " AND ".join(self.where) if self.where else ""
