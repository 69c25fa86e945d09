"""CEL filter -> a small, typed filter tree (whitelist translator,
docs/design.md#storage-query-4).

:func:`compile_filter` parses with :func:`processor.cel.ast.parse` and accepts only: field paths
of the table's field set, string / int / uint / double / bool literals, ``timestamp('RFC3339')``,
list literals on the right of ``in``, the operators ``== != < <= > >= && || ! in`` and the
methods ``startsWith``, ``endsWith``, ``contains``. Anything else is rejected with a
:class:`FilterError` naming the construct, its position and the supported set.

The resulting tree is rendered to SQL by :mod:`processor.query.sql` (every literal becomes a
typed server-side parameter) and evaluated client-side by :mod:`processor.query.evaluate`
(``activity watch``), so both paths share one language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from processor.cel import ast
from processor.cel.types import DOUBLE, INT, STRING, UINT
from processor.errors import CelCompileError
from processor.query.errors import FilterError, TimeRangeError
from processor.query.tables import Column, Kind, Table
from processor.query.timeparse import parse_rfc3339

SUPPORTED = (
    "field paths, string/int/double/bool literals, timestamp('RFC3339'), "
    "== != < <= > >= && || ! in [list], startsWith(), endsWith(), contains()"
)
MAX_NODES = 2000
MAX_FILTER_LENGTH = 64 * 1024
_UUID = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")
_STRING_METHODS = ("startsWith", "endsWith", "contains")


@dataclass(frozen=True)
class Field:
    """A whitelisted field (CEL path and its column)."""

    path: str
    column: Column

    @property
    def kind(self) -> Kind | str:
        return self.column.kind


@dataclass(frozen=True)
class Const:
    """A literal: kind ``string``, ``int``, ``double``, ``time`` (epoch ns) or ``uuid``."""

    kind: str
    value: str | int | float


Operand = Field | Const


@dataclass(frozen=True)
class Compare:
    op: str  # one of == != < <= > >=
    left: Operand
    right: Operand


@dataclass(frozen=True)
class InList:
    operand: Operand
    items: tuple[Const, ...]


@dataclass(frozen=True)
class StrTest:
    method: str  # startsWith | endsWith | contains
    target: Operand
    arg: Const


@dataclass(frozen=True)
class Logic:
    op: str  # and | or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Negate:
    operand: Expr


@dataclass(frozen=True)
class BoolConst:
    value: bool


Expr = Compare | InList | StrTest | Logic | Negate | BoolConst


def compile_filter(source: str | None, table: Table) -> Expr | None:
    """Translate a CEL filter for ``table``; ``None`` for an empty filter.

    Raises:
        FilterError: a syntax error, an unknown field, a type mismatch or an unsupported construct.
    """
    if source is None or not source.strip():
        return None
    if len(source) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter is longer than {MAX_FILTER_LENGTH} characters")
    try:
        node = ast.parse(source)
        return _Translator(table, source).boolean(node)
    except CelCompileError as exc:
        hint = f"\nSupported: {SUPPORTED}" if "not supported" in str(exc) else ""
        raise FilterError(f"invalid filter: {exc}{hint}") from None
    except RecursionError:
        raise FilterError("filter is nested too deeply") from None


def _kind_name(kind: str) -> str:
    return {"time": "timestamp", "uuid": "string (UUID)"}.get(kind, kind)


class _Translator:
    def __init__(self, table: Table, source: str) -> None:
        self.table = table
        self.source = source
        self.nodes = 0

    def fail(self, node: ast.Node, message: str) -> FilterError:
        return FilterError(f"filter {node.line}:{node.column}: {message}")

    def unsupported(self, node: ast.Node, construct: str) -> FilterError:
        return self.fail(node, f"{construct} is not supported in filters. Supported: {SUPPORTED}")

    def count(self, node: ast.Node) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"filter has more than {MAX_NODES} terms")

    # -- boolean positions ---------------------------------------------------------------------
    def boolean(self, node: ast.Node) -> Expr:
        self.count(node)
        if isinstance(node, ast.And | ast.Or):
            op = "and" if isinstance(node, ast.And) else "or"
            return Logic(op, self.boolean(node.left), self.boolean(node.right))
        if isinstance(node, ast.Not):
            return Negate(self.boolean(node.operand))
        if isinstance(node, ast.Literal) and isinstance(node.value, bool):
            return BoolConst(node.value)
        if isinstance(node, ast.Binary) and node.op in _COMPARE:
            return self.compare(node)
        if isinstance(node, ast.Binary) and node.op == "in":
            return self.in_list(node)
        if isinstance(node, ast.Call) and node.function in _STRING_METHODS:
            return self.string_method(node)
        if isinstance(node, ast.Select | ast.Ident | ast.Literal):
            return self.not_boolean(node)
        raise self.unsupported(node, self.describe(node))

    def not_boolean(self, node: ast.Node) -> Expr:
        operand = self.operand(node)
        what = operand.path if isinstance(operand, Field) else "a literal"
        raise self.fail(
            node, f"{what} is a {_kind_name(operand.kind)}, not a condition (compare it: == != ...)"
        )

    def compare(self, node: ast.Binary) -> Expr:
        left, right = self.operand(node.left), self.operand(node.right)
        left, right = self.unify(node, left, right)
        if node.op not in ("==", "!=") and "uuid" in (left.kind, right.kind):
            raise self.fail(node, f"operator {node.op} is not supported on auditID (use == or !=)")
        return Compare(node.op, left, right)

    def in_list(self, node: ast.Binary) -> Expr:
        operand = self.operand(node.left)
        if not isinstance(node.right, ast.ListLit):
            raise self.fail(node.right, "the right side of 'in' must be a list literal [a, b, ...]")
        items: list[Const] = []
        for item in node.right.items:
            self.count(item)
            const = self.operand(item)
            if not isinstance(const, Const):
                raise self.fail(item, "list items of 'in' must be literals")
            _, const = self.unify(item, operand, const)
            assert isinstance(const, Const)
            items.append(const)
        return InList(operand, tuple(items))

    def string_method(self, node: ast.Call) -> Expr:
        if node.target is None or len(node.args) != 1:
            raise self.fail(node, f"{node.function} takes the form s.{node.function}('text')")
        target = self.operand(node.target)
        arg = self.operand(node.args[0])
        if target.kind not in ("string", "uuid"):
            raise self.fail(
                node, f"{node.function}() needs a string, got {_kind_name(target.kind)}"
            )
        if not isinstance(arg, Const) or arg.kind != "string":
            raise self.fail(
                node.args[0], f"the argument of {node.function}() must be a string literal"
            )
        return StrTest(node.function, target, arg)

    # -- value positions -----------------------------------------------------------------------
    def operand(self, node: ast.Node) -> Operand:
        self.count(node)
        if isinstance(node, ast.Literal):
            return self.literal(node)
        if isinstance(node, ast.Neg) and isinstance(node.operand, ast.Literal):
            const = self.literal(node.operand)
            if const.kind not in ("int", "double"):
                raise self.unsupported(node, "unary minus on a non-number")
            assert isinstance(const.value, int | float)
            return Const(const.kind, -const.value)
        if isinstance(node, ast.Call) and node.function == "timestamp" and node.target is None:
            return self.timestamp(node)
        if isinstance(node, ast.Select | ast.Ident):
            return self.field(node)
        raise self.unsupported(node, self.describe(node))

    def literal(self, node: ast.Literal) -> Const:
        if node.type == STRING:
            return Const("string", str(node.value))
        if isinstance(node.value, bool):
            raise self.fail(node, "a bool literal can only stand alone as a condition")
        if node.type in (INT, UINT):
            if not -(2**63) <= int(node.value) < 2**63:
                raise self.fail(node, "integer literal out of range")
            return Const("int", int(node.value))
        if node.type == DOUBLE:
            return Const("double", float(node.value))
        raise self.unsupported(node, f"{node.type} literal")

    def timestamp(self, node: ast.Call) -> Const:
        args = node.args
        if len(args) != 1 or not (isinstance(args[0], ast.Literal) and args[0].type == STRING):
            raise self.fail(node, "timestamp() takes one RFC3339 string literal")
        try:
            return Const("time", parse_rfc3339(str(args[0].value)))
        except TimeRangeError as exc:
            raise self.fail(node, str(exc)) from None

    def field(self, node: ast.Node) -> Field:
        path = self.path_of(node)
        column = self.table.fields.get(path)
        if column is None:
            if any(f.startswith(path + ".") for f in self.table.fields):
                raise self.fail(node, f"field '{path}' must be accessed with dot notation")
            raise self.fail(
                node,
                f"field '{path}' is not available for filtering {self.table.noun}. "
                f"Available fields: {self.table.field_list()}",
            )
        return Field(path, column)

    def path_of(self, node: ast.Node) -> str:
        if isinstance(node, ast.Ident):
            return node.name
        if isinstance(node, ast.Select):
            return self.path_of(node.operand) + "." + node.field
        raise self.unsupported(node, self.describe(node))

    def unify(self, node: ast.Node, left: Operand, right: Operand) -> tuple[Operand, Operand]:
        """Check operand kinds agree; string literals next to a UUID column become ``uuid``."""
        kinds = {left.kind, right.kind}
        if len(kinds) == 1 or kinds <= {"int", "double"}:
            return left, right
        if kinds == {"uuid", "string"}:
            return self.as_uuid(node, left), self.as_uuid(node, right)
        raise self.fail(
            node,
            f"cannot compare {self.label(left)} with {self.label(right)}",
        )

    def as_uuid(self, node: ast.Node, operand: Operand) -> Operand:
        if isinstance(operand, Field) or operand.kind == "uuid":
            return operand
        text = str(operand.value)
        if not _UUID.fullmatch(text):
            raise self.fail(node, f"auditID must be compared with a UUID, got {text!r}")
        return Const("uuid", text)

    @staticmethod
    def label(operand: Operand) -> str:
        if isinstance(operand, Field):
            return f"{operand.path} ({_kind_name(operand.kind)})"
        return f"a {_kind_name(operand.kind)} literal"

    @staticmethod
    def describe(node: ast.Node) -> str:
        if isinstance(node, ast.Binary):
            return f"operator '{node.op}'"
        if isinstance(node, ast.Call):
            return f"function {node.function}()"
        names = {
            ast.Cond: "conditional operator ?:",
            ast.Index: "index operator [ ]",
            ast.MapLit: "map literal",
            ast.ListLit: "list literal outside 'in'",
            ast.Has: "has() macro",
            ast.Neg: "unary minus",
        }
        if isinstance(node, ast.Comprehension):
            return f"{node.macro}() macro"
        return names.get(type(node), type(node).__name__)
