"""A small CEL syntax tree built from cel-python's lark parse tree.

cel-python (``celpy``) is the parser. Its lark tree is turned into the node classes below, with
cel-go's parse-time macros (``has``, ``all``, ``exists``, ``exists_one``, ``map``, ``filter``)
expanded into :class:`Has` and :class:`Comprehension` nodes. Constructs outside the supported subset
(message construction, leading-dot names) are rejected here with their position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from processor.cel.types import BOOL, BYTES, DOUBLE, INT, NULL, STRING, UINT, CelType
from processor.cel.values import UInt
from processor.errors import CelCompileError

if TYPE_CHECKING:  # imported when parsing: the node classes alone must not load the parser
    import lark
    from celpy.celparser import CELParser


@dataclass(eq=False)
class Node:
    """Base of every node: its 1-based source position."""

    line: int = field(default=1, kw_only=True)
    column: int = field(default=1, kw_only=True)


@dataclass(eq=False)
class Literal(Node):
    value: Any
    type: CelType


@dataclass(eq=False)
class Ident(Node):
    name: str


@dataclass(eq=False)
class Select(Node):
    operand: Node
    field: str


@dataclass(eq=False)
class Index(Node):
    operand: Node
    index: Node


@dataclass(eq=False)
class Call(Node):
    """A function call ``f(args)`` or a receiver-style call ``target.f(args)``."""

    function: str
    target: Node | None
    args: list[Node]


@dataclass(eq=False)
class ListLit(Node):
    items: list[Node]


@dataclass(eq=False)
class MapLit(Node):
    entries: list[tuple[Node, Node]]


@dataclass(eq=False)
class Cond(Node):
    cond: Node
    then: Node
    otherwise: Node


@dataclass(eq=False)
class And(Node):
    left: Node
    right: Node


@dataclass(eq=False)
class Or(Node):
    left: Node
    right: Node


@dataclass(eq=False)
class Not(Node):
    operand: Node


@dataclass(eq=False)
class Neg(Node):
    operand: Node


@dataclass(eq=False)
class Binary(Node):
    """``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, ``in``, ``+``, ``-``, ``*``, ``/``, ``%``."""

    op: str
    left: Node
    right: Node


@dataclass(eq=False)
class Has(Node):
    """``has(operand.field)``: presence test of ``field`` in the map ``operand``."""

    operand: Node
    field: str


@dataclass(eq=False)
class Comprehension(Node):
    """``range.all(var, pred)`` and friends; ``transform`` only for ``map``."""

    macro: str  # all | exists | exists_one | map | filter
    range: Node
    var: str
    predicate: Node | None
    transform: Node | None


_RELATIONS = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}
_MACROS = {"all", "exists", "exists_one", "map", "filter"}

_parser: CELParser | None = None


def _get_parser() -> CELParser:
    global _parser  # one parser per process: building it compiles the grammar (tens of ms)
    if _parser is None:
        from celpy.celparser import CELParser

        _parser = CELParser()
    return _parser


def format_error(source: str, line: int, column: int, message: str) -> str:
    """cel-go's error layout: ``ERROR: <input>:L:C: msg`` then the line and a dotted caret."""
    lines = source.split("\n")
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return f"ERROR: <input>:{line}:{column}: {message}\n | {text}\n | {'.' * (column - 1)}^"


def parse(source: str) -> Node:
    """Parse a CEL expression into a :class:`Node` tree.

    Raises:
        CelCompileError: on a syntax error or an unsupported construct (cel-go style message).
    """
    from celpy.celparser import CELParseError

    try:
        tree = _get_parser().parse(source)
    except CELParseError as exc:
        line = getattr(exc, "line", None) or 1
        column = getattr(exc, "column", None) or 1
        raise CelCompileError(format_error(source, line, column, "Syntax error")) from None
    except RecursionError:
        raise CelCompileError("ERROR: <input>:1:1: expression is nested too deeply") from None
    return _Builder(source).build(tree)


_SIMPLE_ESCAPES = {
    "a": 7,
    "b": 8,
    "f": 12,
    "n": 10,
    "r": 13,
    "t": 9,
    "v": 11,
    "\\": 92,
    "?": 63,
    '"': 34,
    "'": 39,
    "`": 96,
}
_HEX = frozenset("0123456789abcdefABCDEF")


def unquote(text: str) -> str | bytes:
    """Decode a CEL string or bytes literal token as cel-go's parser does.

    celpy's own decoder drops newlines in triple-quoted literals and keeps unknown escapes such as
    ``\\d`` as text; cel-go rejects those. Octal and ``\\x`` escapes are code points in strings and
    bytes in bytes literals; ``\\u``/``\\U`` are not allowed in bytes.

    Raises:
        ValueError: an invalid escape sequence.
    """
    i = 0
    is_bytes = raw = False
    while text[i] in "rRbB":
        if text[i] in "bB":
            is_bytes = True
        else:
            raw = True
        i += 1
    body = text[i:]
    quote = 3 if body[:3] in ('"""', "'''") else 1
    body = body[quote:-quote]
    if raw or "\\" not in body:
        return body.encode("utf-8") if is_bytes else body
    out = bytearray()  # UTF-8 for strings too, decoded at the end
    pos, n = 0, len(body)
    while pos < n:
        ch = body[pos]
        if ch != "\\":
            out += ch.encode("utf-8")
            pos += 1
            continue
        esc = body[pos + 1 : pos + 2]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            pos += 2
            continue
        if esc in ("x", "X", "u", "U"):
            width = {"x": 2, "X": 2, "u": 4, "U": 8}[esc]
            digits = body[pos + 2 : pos + 2 + width]
            if len(digits) != width or not set(digits) <= _HEX or (is_bytes and width > 2):
                raise ValueError(f"invalid escape sequence \\{esc}{digits}")
            value = int(digits, 16)
            pos += 2 + width
        elif esc in ("0", "1", "2", "3"):
            digits = body[pos + 1 : pos + 4]
            if len(digits) != 3 or not set(digits) <= set("01234567"):
                raise ValueError(f"invalid escape sequence \\{digits}")
            value = int(digits, 8)
            pos += 4
        else:
            raise ValueError(f"invalid escape sequence \\{esc}")
        if is_bytes:
            out.append(value)
        elif 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            raise ValueError(f"invalid code point {value:#x}")
        else:
            out += chr(value).encode("utf-8")
    return bytes(out) if is_bytes else out.decode("utf-8")


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, tree: Any, message: str) -> CelCompileError:
        meta = getattr(tree, "meta", None)
        line = getattr(meta, "line", None) or getattr(tree, "line", None) or 1
        column = getattr(meta, "column", None) or getattr(tree, "column", None) or 1
        return CelCompileError(format_error(self.source, line, column, message))

    @staticmethod
    def pos(tree: Any) -> dict[str, int]:
        meta = getattr(tree, "meta", None)
        line = getattr(meta, "line", None) or getattr(tree, "line", None) or 1
        column = getattr(meta, "column", None) or getattr(tree, "column", None) or 1
        return {"line": line, "column": column}

    def build(self, tree: lark.Tree) -> Node:
        method = getattr(self, "_" + tree.data, None)
        if method is None:
            raise self.fail(tree, f"unsupported syntax: {tree.data}")
        return method(tree)

    # -- structure ---------------------------------------------------------------------------
    def _expr(self, t: lark.Tree) -> Node:
        kids = [c for c in t.children if c is not None]
        if len(kids) == 1:
            return self.build(kids[0])
        cond, then, otherwise = (self.build(k) for k in kids)
        return Cond(cond, then, otherwise, **self.pos(t))

    def _conditionalor(self, t: lark.Tree) -> Node:
        kids = [c for c in t.children if c is not None]
        if len(kids) == 1:
            return self.build(kids[0])
        return Or(self.build(kids[0]), self.build(kids[1]), **self.pos(kids[1]))

    def _conditionaland(self, t: lark.Tree) -> Node:
        kids = [c for c in t.children if c is not None]
        if len(kids) == 1:
            return self.build(kids[0])
        return And(self.build(kids[0]), self.build(kids[1]), **self.pos(kids[1]))

    def _binary_level(self, t: lark.Tree) -> Node:
        kids = [c for c in t.children if c is not None]
        if len(kids) == 1:
            return self.build(kids[0])
        op_tree, right = kids
        op = _RELATIONS[op_tree.data]
        left = self.build(op_tree.children[0])
        return Binary(op, left, self.build(right), **self.pos(op_tree))

    _relation = _binary_level
    _addition = _binary_level
    _multiplication = _binary_level

    def _unary(self, t: lark.Tree) -> Node:
        kids = t.children
        if len(kids) == 1:
            return self.build(kids[0])
        op, operand = kids
        node = self.build(operand)
        if op.data == "unary_not":
            return Not(node, **self.pos(t))
        return Neg(node, **self.pos(t))

    def _member(self, t: lark.Tree) -> Node:
        return self.build(t.children[0])

    def _primary(self, t: lark.Tree) -> Node:
        return self.build(t.children[0])

    def _paren_expr(self, t: lark.Tree) -> Node:
        return self.build(t.children[0])

    # -- members -----------------------------------------------------------------------------
    def _member_dot(self, t: lark.Tree) -> Node:
        operand, name = t.children
        return Select(self.build(operand), str(name), **self.pos(name))

    def _member_index(self, t: lark.Tree) -> Node:
        operand, index = t.children
        return Index(self.build(operand), self.build(index), **self.pos(t))

    def _member_dot_arg(self, t: lark.Tree) -> Node:
        operand, name, *rest = t.children
        exprlist = rest[0] if rest else None
        args = self._exprlist(exprlist) if exprlist is not None else []
        function = str(name)
        if function in _MACROS and (len(args) == 2 or (len(args) == 3 and function == "map")):
            return self._comprehension(t, function, self.build(operand), args, exprlist)
        return Call(function, self.build(operand), args, **self.pos(name))

    def _member_object(self, t: lark.Tree) -> Node:
        raise self.fail(t, "message construction (Type{field: value}) is not supported")

    def _dot_ident(self, t: lark.Tree) -> Node:
        raise self.fail(t, "leading-dot names (.name) are not supported")

    _dot_ident_arg = _dot_ident

    def _ident(self, t: lark.Tree) -> Node:
        return Ident(str(t.children[0]), **self.pos(t))

    def _ident_arg(self, t: lark.Tree) -> Node:
        name, *rest = t.children  # no exprlist child for a call without arguments (``f()``)
        exprlist = rest[0] if rest else None
        args = self._exprlist(exprlist) if exprlist is not None else []
        function = str(name)
        if function == "has" and len(args) == 1:
            arg = args[0]
            if not isinstance(arg, Select):
                raise self.fail(t, "invalid argument to has() macro")
            return Has(arg.operand, arg.field, **self.pos(t))
        return Call(function, None, args, **self.pos(t))

    def _comprehension(
        self, t: lark.Tree, macro: str, rng: Node, args: list[Node], exprlist: Any
    ) -> Node:
        var = args[0]
        if not isinstance(var, Ident):
            raise self.fail(exprlist, "argument must be a simple name")
        if len(args) == 3:
            return Comprehension(macro, rng, var.name, args[1], args[2], **self.pos(t))
        if macro == "map":
            return Comprehension(macro, rng, var.name, None, args[1], **self.pos(t))
        return Comprehension(macro, rng, var.name, args[1], None, **self.pos(t))

    def _exprlist(self, t: lark.Tree) -> list[Node]:
        return [self.build(c) for c in t.children]

    def _list_lit(self, t: lark.Tree) -> Node:
        exprlist = t.children[0] if t.children else None
        items = self._exprlist(exprlist) if exprlist is not None else []
        return ListLit(items, **self.pos(t))

    def _map_lit(self, t: lark.Tree) -> Node:
        inits = t.children[0] if t.children else None
        kids = [self.build(c) for c in inits.children] if inits is not None else []
        entries = list(zip(kids[0::2], kids[1::2], strict=True))
        return MapLit(entries, **self.pos(t))

    def _literal(self, t: lark.Tree) -> Node:
        from lark import Token

        token = t.children[0]
        assert isinstance(token, Token)
        kind, text = token.type, token.value
        pos = self.pos(t)
        try:
            if kind == "INT_LIT":
                value = int(text, 16) if "x" in text.lower() else int(text, 10)
                if not -(2**63) <= value < 2**63:
                    raise ValueError("int out of range")
                return Literal(value, INT, **pos)
            if kind == "UINT_LIT":
                value = int(text[:-1], 16) if "x" in text.lower() else int(text[:-1], 10)
                if not 0 <= value < 2**64:
                    raise ValueError("uint out of range")
                return Literal(UInt(value), UINT, **pos)
            if kind == "FLOAT_LIT":
                return Literal(float(text), DOUBLE, **pos)
            if kind in ("STRING_LIT", "MLSTRING_LIT"):
                return Literal(unquote(text), STRING, **pos)
            if kind == "BYTES_LIT":
                return Literal(unquote(text), BYTES, **pos)
            if kind == "BOOL_LIT":
                return Literal(text == "true", BOOL, **pos)
            if kind == "NULL_LIT":
                return Literal(None, NULL, **pos)
        except ValueError as exc:
            raise self.fail(t, f"invalid literal {text}: {exc}") from None
        raise self.fail(t, f"unsupported literal {text}")
