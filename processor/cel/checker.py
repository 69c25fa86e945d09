"""A small CEL type checker with cel-go's rules and messages.

It decides the static type of an expression (a match must be ``bool``, a summary block ``string``
or ``dyn``) and rejects undeclared variables, unknown functions and impossible operand types at
load time. JSON data is ``dyn``, so most checks on it are left to run time, as in cel-go.
"""

from __future__ import annotations

from processor.cel import ast
from processor.cel import types as t
from processor.cel.env import Environment
from processor.cel.functions import FUNCTIONS, Overload
from processor.errors import CelCompileError

_ORDERABLE = {"int", "uint", "double", "string", "bytes", "bool", t.TIMESTAMP.name, t.DURATION.name}
_OPERATOR_NAMES = {
    "<": "_<_",
    "<=": "_<=_",
    ">": "_>_",
    ">=": "_>=_",
    "==": "_==_",
    "!=": "_!=_",
    "in": "@in",
    "+": "_+_",
    "-": "_-_",
    "*": "_*_",
    "/": "_/_",
    "%": "_%_",
}


def check(node: ast.Node, env: Environment, source: str) -> t.CelType:
    """Return the static type of ``node``; raise :class:`CelCompileError` on a type error."""
    return _Checker(env, source).check(node, {})


def _is_generic(p: t.CelType) -> bool:
    return len(p.name) == 1 and p.name.isupper()


def _matches(param: t.CelType, arg: t.CelType) -> bool:
    if _is_generic(param) or arg.is_dyn or param.is_dyn:
        return True
    if param.name != arg.name or len(param.params) != len(arg.params):
        return False
    return all(_matches(p, a) for p, a in zip(param.params, arg.params, strict=True))


def _unifies(a: t.CelType, b: t.CelType) -> bool:
    """Whether two arguments can bind the same type parameter (``_==_(A, A)``, ``_?_:_``)."""
    if t.NULL in (a, b):
        # cel-go: null only unifies with dyn, null and the legacy-nullable types
        other = b if a == t.NULL else a
        return other.is_dyn or other in (t.NULL, t.TIMESTAMP, t.DURATION)
    return t.is_assignable(a, b)


class _Checker:
    def __init__(self, env: Environment, source: str) -> None:
        self.env = env
        self.source = source

    def fail(self, node: ast.Node, message: str) -> CelCompileError:
        return CelCompileError(ast.format_error(self.source, node.line, node.column, message))

    def no_overload(
        self, node: ast.Node, name: str, args: list[t.CelType], receiver: t.CelType | None = None
    ) -> CelCompileError:
        shown = f"({', '.join(str(a) for a in args)})"
        if receiver is not None:
            shown = f"{receiver}.{shown}"
        return self.fail(node, f"found no matching overload for '{name}' applied to '{shown}'")

    def check(self, node: ast.Node, scope: dict[str, t.CelType]) -> t.CelType:
        method = getattr(self, "_" + type(node).__name__)
        return method(node, scope)

    def _Literal(self, node: ast.Literal, scope: dict[str, t.CelType]) -> t.CelType:
        return node.type

    def _Ident(self, node: ast.Ident, scope: dict[str, t.CelType]) -> t.CelType:
        if node.name in scope:
            return scope[node.name]
        if node.name in self.env.variables:
            return self.env.variables[node.name]
        if node.name in t.TYPE_IDENTS:
            return t.type_of(t.TYPE_IDENTS[node.name])
        raise self.fail(node, f"undeclared reference to '{node.name}' (in container '')")

    def _Select(self, node: ast.Select, scope: dict[str, t.CelType]) -> t.CelType:
        operand = self.check(node.operand, scope)
        if operand.is_dyn:
            return t.DYN
        if operand.name == "map" and _matches(operand.params[0], t.STRING):
            return operand.params[1]
        raise self.fail(node, f"type '{operand}' does not support field selection")

    def _Has(self, node: ast.Has, scope: dict[str, t.CelType]) -> t.CelType:
        operand = self.check(node.operand, scope)
        if operand.is_dyn or operand.name == "map":
            return t.BOOL
        raise self.fail(node, f"type '{operand}' does not support field selection")

    def _Index(self, node: ast.Index, scope: dict[str, t.CelType]) -> t.CelType:
        operand = self.check(node.operand, scope)
        index = self.check(node.index, scope)
        if operand.is_dyn:
            return t.DYN
        if operand.name == "list" and (index.is_dyn or index == t.INT):  # cel-go: index_list(int)
            return operand.params[0]
        if operand.name == "map" and _matches(operand.params[0], index):
            return operand.params[1]
        raise self.no_overload(node, "_[_]", [operand, index])

    def _ListLit(self, node: ast.ListLit, scope: dict[str, t.CelType]) -> t.CelType:
        elem: t.CelType | None = None
        for item in node.items:
            it = self.check(item, scope)
            elem = it if elem is None else t.join(elem, it)
        return t.list_of(elem or t.DYN)

    def _MapLit(self, node: ast.MapLit, scope: dict[str, t.CelType]) -> t.CelType:
        key: t.CelType | None = None
        value: t.CelType | None = None
        for k, v in node.entries:
            kt, vt = self.check(k, scope), self.check(v, scope)
            if not (kt.is_dyn or kt.name in ("string", "int", "uint", "bool")):
                raise self.fail(k, f"unsupported map key type: {kt}")
            key = kt if key is None else t.join(key, kt)
            value = vt if value is None else t.join(value, vt)
        return t.map_of(key or t.DYN, value or t.DYN)

    def _bool_operand(self, node: ast.Node, op: str, types: list[t.CelType]) -> None:
        if any(not (x.is_dyn or x == t.BOOL) for x in types):
            raise self.no_overload(node, op, types)

    def _And(self, node: ast.And, scope: dict[str, t.CelType]) -> t.CelType:
        types = [self.check(node.left, scope), self.check(node.right, scope)]
        self._bool_operand(node, "_&&_", types)
        return t.BOOL

    def _Or(self, node: ast.Or, scope: dict[str, t.CelType]) -> t.CelType:
        types = [self.check(node.left, scope), self.check(node.right, scope)]
        self._bool_operand(node, "_||_", types)
        return t.BOOL

    def _Not(self, node: ast.Not, scope: dict[str, t.CelType]) -> t.CelType:
        self._bool_operand(node, "!_", [self.check(node.operand, scope)])
        return t.BOOL

    def _Neg(self, node: ast.Neg, scope: dict[str, t.CelType]) -> t.CelType:
        operand = self.check(node.operand, scope)
        if operand.is_dyn or operand in (t.INT, t.DOUBLE):  # cel-go: negate_int64/_double only
            return operand
        raise self.no_overload(node, "-_", [operand])

    def _Cond(self, node: ast.Cond, scope: dict[str, t.CelType]) -> t.CelType:
        cond = self.check(node.cond, scope)
        then = self.check(node.then, scope)
        otherwise = self.check(node.otherwise, scope)
        # cel-go: _?_:_(bool, A, A) -> A; mixed branches need dyn() (`c ? 1 : 'a'` is an error)
        if not (cond.is_dyn or cond == t.BOOL) or not _unifies(then, otherwise):
            raise self.no_overload(node, "_?_:_", [cond, then, otherwise])
        return t.join(then, otherwise)

    def _Binary(self, node: ast.Binary, scope: dict[str, t.CelType]) -> t.CelType:
        left = self.check(node.left, scope)
        right = self.check(node.right, scope)
        op = node.op
        result = self._binary_result(op, left, right)
        if result is None:
            raise self.no_overload(node, _OPERATOR_NAMES[op], [left, right])
        return result

    @staticmethod
    def _binary_result(op: str, left: t.CelType, right: t.CelType) -> t.CelType | None:
        dyn = left.is_dyn or right.is_dyn
        numeric = left in t.NUMERIC and right in t.NUMERIC
        if op in ("==", "!="):
            return t.BOOL if _unifies(left, right) else None
        if op in ("<", "<=", ">", ">="):
            ok = dyn or numeric or (left == right and left.name in _ORDERABLE)
            return t.BOOL if ok else None
        if op == "in":
            if right.is_dyn:
                return t.BOOL
            if right.name == "list":
                return t.BOOL if t.is_assignable(right.params[0], left) else None
            if right.name == "map":
                return t.BOOL if t.is_assignable(right.params[0], left) else None
            return None
        if dyn:
            other = right if left.is_dyn else left
            if other.is_dyn or other.name == "list":
                return t.DYN if other.is_dyn else other
            if op == "%" and other not in (t.INT, t.UINT):
                return None
            if op in ("*", "/") and other not in t.NUMERIC:
                return None
            if other == t.TIMESTAMP and op == "-":
                return t.DYN
            return other
        if op == "+":
            if left == right and left.name in ("int", "uint", "double", "string", "bytes"):
                return left
            if left.name == "list" and right.name == "list":  # add_list(list(A), list(A))
                return t.join(left, right) if t.is_assignable(left, right) else None
            if {left, right} == {t.TIMESTAMP, t.DURATION}:
                return t.TIMESTAMP
            return t.DURATION if left == right == t.DURATION else None
        if op == "-":
            if left == right and left.name in ("int", "uint", "double"):
                return left
            if left == t.TIMESTAMP:
                return (
                    t.DURATION
                    if right == t.TIMESTAMP
                    else (t.TIMESTAMP if right == t.DURATION else None)
                )
            return t.DURATION if left == right == t.DURATION else None
        if op in ("*", "/"):
            return left if left == right and left in t.NUMERIC else None
        if op == "%":
            return left if left == right and left in (t.INT, t.UINT) else None
        return None

    def _Call(self, node: ast.Call, scope: dict[str, t.CelType]) -> t.CelType:
        # cel-go checks the receiver first: ``base64.encode(x)`` reports 'base64'
        receiver = self.check(node.target, scope) if node.target is not None else None
        fn = FUNCTIONS.get(node.function)
        if fn is None:
            raise self.fail(node, f"undeclared reference to '{node.function}' (in container '')")
        args = [self.check(a, scope) for a in node.args]
        full = [receiver, *args] if receiver is not None else args
        results = {
            o.result
            for o in fn.overloads
            if o.receiver == (receiver is not None) and self._overload_matches(o, full)
        }
        if not results:
            raise self.no_overload(node, node.function, args, receiver)
        if len(results) == 1:
            return results.pop()
        return t.DYN

    @staticmethod
    def _overload_matches(overload: Overload, args: list[t.CelType]) -> bool:
        if len(overload.params) != len(args):
            return False
        return all(_matches(p, a) for p, a in zip(overload.params, args, strict=True))

    def _Comprehension(self, node: ast.Comprehension, scope: dict[str, t.CelType]) -> t.CelType:
        rng = self.check(node.range, scope)
        if rng.is_dyn:
            elem = t.DYN
        elif rng.name == "list" or rng.name == "map":
            elem = rng.params[0]
        else:
            raise self.fail(
                node.range,
                f"expression of type '{rng}' cannot be range of a "
                "comprehension (must be list, map, or dynamic)",
            )
        inner = {**scope, node.var: elem}
        if node.predicate is not None:
            pred = self.check(node.predicate, inner)
            if not (pred.is_dyn or pred == t.BOOL):
                raise self.no_overload(
                    node.predicate, "_&&_" if node.macro == "all" else "_||_", [t.BOOL, pred]
                )
        if node.macro == "map":
            assert node.transform is not None
            return t.list_of(self.check(node.transform, inner))
        if node.macro == "filter":
            return t.list_of(elem)
        return t.BOOL
