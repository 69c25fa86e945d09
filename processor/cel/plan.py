"""Compile a checked CEL syntax tree into an evaluation plan of Python closures.

Layout: every node becomes a closure ``fn(act) -> value`` where ``act`` is the activation, a plain
``dict`` of variable name to value. The link collector of a summary evaluation is the list stored
under the key ``LINKS`` (not a valid identifier, so it cannot clash with a variable); match
expressions have no collector and ``link()`` there only returns its text.

Invariants (cel-go semantics): runtime errors are raised as ``CelEvalError`` and absorbed by
``&&``, ``||`` (``false && error`` is ``false`` in either order) and by the comprehension macros the
way cel-go's macro expansions absorb them; the ternary propagates an error in its condition; a
missing map key is an error and ``has()`` on a missing parent is an error.

This is the pure-Python twin of the native plans (``_native/plan.pyx``, built as
``processor._native.plan``: the same tree as typed ``cdef`` nodes): it is the specification of
their results and errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from processor.cel import ast
from processor.cel.format import go_float, go_format
from processor.cel.functions import FUNCTIONS, compile_regex
from processor.cel.types import TYPE_IDENTS
from processor.cel.values import (
    TypeValue,
    add,
    cel_eq,
    cel_in,
    check_ordered,
    div,
    map_get,
    map_has,
    mod,
    mul,
    neg,
    no_overload,
    sub,
    type_name,
)
from processor.errors import CelEvalError

Plan = Callable[[dict], Any]
LINKS = "@links"


def compile_plan(node: ast.Node) -> Plan:
    """Compile ``node`` (already type-checked) into a closure over an activation dict."""
    return _COMPILERS[type(node)](node)


def _literal(node: ast.Literal) -> Plan:
    value = node.value
    return lambda a: value


def _ident(node: ast.Ident) -> Plan:
    name = node.name
    if name in TYPE_IDENTS:
        type_value = TypeValue(TYPE_IDENTS[name].name)

        def ident_or_type(a: dict) -> Any:
            return a.get(name, type_value)

        return ident_or_type

    def ident(a: dict) -> Any:
        try:
            return a[name]
        except KeyError:
            raise CelEvalError(f"no such attribute: {name}") from None

    return ident


def _field(value: Any, field: str) -> Any:
    if type(value) is dict:
        try:
            return value[field]
        except KeyError:
            raise CelEvalError(f"no such key: {field}") from None
    # cel-go's refQualify: a list rejects a string index, any other value has no such key
    if type(value) is list:
        raise CelEvalError("unsupported index type 'string' in list")
    raise CelEvalError(f"no such key: {field}")


def _type_label(value: Any) -> str:
    try:
        return type_name(value)
    except CelEvalError:
        return type(value).__name__


def _select(node: ast.Select) -> Plan:
    # Flatten ``var.a.b.c`` into one closure walking a path: the common case in policies.
    path: list[str] = []
    cur: ast.Node = node
    while isinstance(cur, ast.Select):
        path.append(cur.field)
        cur = cur.operand
    path.reverse()
    root = compile_plan(cur)
    if len(path) == 1:
        field = path[0]

        def select1(a: dict) -> Any:
            v = root(a)
            if type(v) is dict:
                try:
                    return v[field]
                except KeyError:
                    raise CelEvalError(f"no such key: {field}") from None
            return _field(v, field)

        return select1
    fields = tuple(path)

    def select_path(a: dict) -> Any:
        v = root(a)
        for f in fields:
            if type(v) is dict:
                try:
                    v = v[f]
                except KeyError:
                    raise CelEvalError(f"no such key: {f}") from None
            else:
                v = _field(v, f)
        return v

    return select_path


def _has(node: ast.Has) -> Plan:
    operand = compile_plan(node.operand)
    field = node.field

    def has(a: dict) -> bool:
        v = operand(a)
        if type(v) is dict:
            return field in v
        # cel-go's presence test (refQualify): a list rejects the string index, a scalar or null
        # parent simply has no such field
        if type(v) is list:
            raise CelEvalError("unsupported index type 'string' in list")
        return False

    return has


def _index(node: ast.Index) -> Plan:
    operand = compile_plan(node.operand)
    index = compile_plan(node.index)

    def index_(a: dict) -> Any:
        v = operand(a)
        i = index(a)
        tv = type(v)
        if tv is dict:
            return map_get(v, i)
        if tv is list:
            ti = type(i)
            # cel-go qualifies indexes as attributes (refQualify, IndexOrError), with these messages
            if ti is float:
                if not i.is_integer():
                    raise CelEvalError(f"unsupported index value {go_float(i)} in list")
                i = int(i)
            elif ti is bool or not isinstance(i, int):
                raise CelEvalError(f"unsupported index type '{_type_label(i)}' in list")
            if 0 <= i < len(v):
                return v[i]
            raise CelEvalError(f"index out of bounds: {i}")
        raise CelEvalError(f"no such key: {go_format(i)}")  # cel-go's refQualify on a non-container

    return index_


def _list(node: ast.ListLit) -> Plan:
    items = [compile_plan(i) for i in node.items]
    return lambda a: [f(a) for f in items]


def _map(node: ast.MapLit) -> Plan:
    entries = [(compile_plan(k), compile_plan(v)) for k, v in node.entries]

    def map_(a: dict) -> dict:
        out: dict = {}
        for kf, vf in entries:
            k = kf(a)
            if map_has(out, k):
                raise CelEvalError(f"Failed with repeated key: {k}")
            out[k] = vf(a)
        return out

    return map_


def _cond(node: ast.Cond) -> Plan:
    cond, then, otherwise = (compile_plan(n) for n in (node.cond, node.then, node.otherwise))

    def cond_(a: dict) -> Any:
        c = cond(a)
        if c is True:
            return then(a)
        if c is False:
            return otherwise(a)
        raise no_overload("_?_:_", c)

    return cond_


def _and(node: ast.And) -> Plan:
    left, right = compile_plan(node.left), compile_plan(node.right)

    def and_(a: dict) -> bool:
        try:
            lv = left(a)
        except CelEvalError as err:
            try:
                rv = right(a)
            except CelEvalError:
                raise err from None
            if rv is False:
                return False
            raise err from None
        if lv is False:
            return False
        rv = right(a)
        if rv is False:
            return False
        if lv is True and rv is True:
            return True
        raise no_overload("_&&_", lv, rv)

    return and_


def _or(node: ast.Or) -> Plan:
    left, right = compile_plan(node.left), compile_plan(node.right)

    def or_(a: dict) -> bool:
        try:
            lv = left(a)
        except CelEvalError as err:
            try:
                rv = right(a)
            except CelEvalError:
                raise err from None
            if rv is True:
                return True
            raise err from None
        if lv is True:
            return True
        rv = right(a)
        if rv is True:
            return True
        if lv is False and rv is False:
            return False
        raise no_overload("_||_", lv, rv)

    return or_


def _not(node: ast.Not) -> Plan:
    operand = compile_plan(node.operand)

    def not_(a: dict) -> bool:
        v = operand(a)
        if v is True:
            return False
        if v is False:
            return True
        raise no_overload("!_", v)

    return not_


def _neg(node: ast.Neg) -> Plan:
    operand = compile_plan(node.operand)
    return lambda a: neg(operand(a))


def _ordering(op: str) -> Callable[[Any, Any], bool]:
    compare = {
        "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y,
        ">": lambda x, y: x > y,
        ">=": lambda x, y: x >= y,
    }[op]

    def ordered(x: Any, y: Any) -> bool:
        check_ordered(x, y, f"_{op}_")
        return bool(compare(x, y))

    return ordered


_ARITH = {"+": add, "-": sub, "*": mul, "/": div, "%": mod}


def _binary(node: ast.Binary) -> Plan:
    op = node.op
    left, right = compile_plan(node.left), compile_plan(node.right)
    if op in ("==", "!="):
        # A string literal equals only an equal string, so Python's == is exact CEL equality.
        if isinstance(node.right, ast.Literal) and type(node.right.value) is str:
            lit = node.right.value
            if op == "==":
                return lambda a: left(a) == lit
            return lambda a: left(a) != lit
        if op == "==":
            return lambda a: cel_eq(left(a), right(a))
        return lambda a: not cel_eq(left(a), right(a))
    if op == "in":
        if (
            isinstance(node.right, ast.ListLit)
            and node.right.items
            and all(isinstance(i, ast.Literal) and type(i.value) is str for i in node.right.items)
        ):
            choices = frozenset(i.value for i in node.right.items)  # type: ignore[attr-defined]
            return lambda a: (v := left(a)).__class__ is str and v in choices
        return lambda a: cel_in(left(a), right(a))
    fn = _ARITH.get(op) or _ordering(op)
    return lambda a: fn(left(a), right(a))


def _call(node: ast.Call) -> Plan:
    if node.function == "link":
        return _link(node)
    impl = FUNCTIONS[node.function].impl
    assert impl is not None
    args = [compile_plan(x) for x in ([node.target] if node.target else []) + node.args]
    if node.function == "matches" and isinstance(node.args[-1], ast.Literal):
        # Warm the regex cache. An invalid literal pattern is a runtime error, as in cel-go
        # (its Compile does not validate regex literals): the expression still compiles.
        with contextlib.suppress(CelEvalError):
            compile_regex(node.args[-1].value)
    if len(args) == 1:
        (x,) = args
        return lambda a: impl(x(a))
    if len(args) == 2:
        x, y = args
        return lambda a: impl(x(a), y(a))
    return lambda a: impl(*[f(a) for f in args])


def _link(node: ast.Call) -> Plan:
    text_fn, ref_fn = (compile_plan(x) for x in node.args)

    def link(a: dict) -> str:
        text = text_fn(a)
        ref = ref_fn(a)
        if type(text) is not str:
            raise no_overload("link", text, ref)
        links = a.get(LINKS)
        if links is not None and type(ref) is dict:
            if not all(type(k) is str for k in ref):
                ref = {k: v for k, v in ref.items() if type(k) is str}
            links.append((text, ref))
        return text

    return link


def _iter_range(value: Any) -> list:
    if type(value) is list:
        return value
    if type(value) is dict:
        return list(value)
    raise no_overload("comprehension range", value)


def _comprehension(node: ast.Comprehension) -> Plan:
    rng = compile_plan(node.range)
    var = node.var
    pred = compile_plan(node.predicate) if node.predicate is not None else None
    transform = compile_plan(node.transform) if node.transform is not None else None
    macro = node.macro

    def run(a: dict) -> Any:
        items = _iter_range(rng(a))
        inner = dict(a)
        if macro in ("all", "exists"):
            stop = macro == "exists"  # the value of the predicate that decides the result
            error: CelEvalError | None = None
            for item in items:
                inner[var] = item
                try:
                    v = pred(inner)  # type: ignore[misc]
                except CelEvalError as exc:
                    error = error or exc
                    continue
                if v is stop:
                    return stop
                if v is not (not stop):
                    error = error or no_overload("_&&_" if macro == "all" else "_||_", v)
            if error is not None:
                raise error
            return not stop
        if macro == "exists_one":
            count = 0
            for item in items:
                inner[var] = item
                v = pred(inner)  # type: ignore[misc]
                if v is True:
                    count += 1
                elif v is not False:
                    raise no_overload("_?_:_", v)
            return count == 1
        out = []
        for item in items:
            inner[var] = item
            if pred is not None:
                v = pred(inner)
                if v is False:
                    continue
                if v is not True:
                    raise no_overload("_?_:_", v)
            out.append(transform(inner) if transform is not None else item)
        return out

    return run


_COMPILERS: dict[type, Callable[[Any], Plan]] = {
    ast.Literal: _literal,
    ast.Ident: _ident,
    ast.Select: _select,
    ast.Has: _has,
    ast.Index: _index,
    ast.ListLit: _list,
    ast.MapLit: _map,
    ast.Cond: _cond,
    ast.And: _and,
    ast.Or: _or,
    ast.Not: _not,
    ast.Neg: _neg,
    ast.Binary: _binary,
    ast.Call: _call,
    ast.Comprehension: _comprehension,
}
