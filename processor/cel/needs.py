"""Static analysis of compiled expressions: which parts of a record they read, and cheap guards.

Two analyses over the checked syntax tree (:mod:`processor.cel.ast`), both conservative:

- :func:`body_needs` -- which paths of the large audit bodies (``audit.requestObject``,
  ``audit.responseObject``) an expression reads. A path ``audit.responseObject.metadata.name``
  needs the value at ``metadata.name`` (whole); ``has(audit.requestObject.spec)`` needs only the
  presence of ``spec``; ``link(text, audit.responseObject)`` needs the fields a link is built
  from (:data:`LINK_NEED`); ``type(x)`` needs only the type of ``x`` (an empty map stays a
  map); any other use of a body or of ``audit`` itself needs everything. A body
  pruned to the needed paths evaluates exactly like the full body for these expressions.
- :func:`guards` -- equality tests on cheap routing fields (``audit.verb``,
  ``audit.objectRef.subresource``, ``event.reason``) that are conjuncts of the top-level ``&&``
  chain of a match. When one is false for a record, the whole match is false (``false && x`` is
  false even when ``x`` errors), so the rule can be skipped without evaluating it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from processor.cel import ast

__all__ = [
    "BODIES",
    "LINK_NEED",
    "PRESENT",
    "WHOLE",
    "Guard",
    "Need",
    "body_needs",
    "guards",
    "merge_need",
]

BODIES = ("requestObject", "responseObject")
WHOLE = "whole"
PRESENT = "present"

#: ``WHOLE``, ``PRESENT`` or a map of key -> Need (only these keys, pruned recursively).
Need = Any

#: What :func:`processor.activity.convert_links` reads of a ``link(text, ref)`` reference (the
#: only use of ``ref``: the plan keeps it for the link collector and returns ``text``).
LINK_NEED: dict[str, Need] = {
    **dict.fromkeys(
        ("kind", "apiGroup", "resource", "type", "apiVersion", "name", "namespace", "uid"), WHOLE
    ),
    "metadata": dict.fromkeys(("name", "namespace", "uid"), WHOLE),
}


def merge_need(a: Need, b: Need) -> Need:
    """The need that satisfies both ``a`` and ``b`` (None is "not needed")."""
    if a is None:
        return b
    if b is None or a == b == PRESENT:
        return a
    if a == WHOLE or b == WHOLE:
        return WHOLE
    if a == PRESENT:
        return b
    if b == PRESENT:
        return a
    out = dict(a)
    for key, sub in b.items():
        out[key] = merge_need(out.get(key), sub)
    return out


def _path_need(path: list[str], leaf: Need) -> Need:
    need = leaf
    for key in reversed(path):
        need = {key: need}
    return need


def _chain(node: ast.Node) -> tuple[str, list[str]] | None:
    """``var.a.b`` -> ``("var", ["a", "b"])``; None for anything else."""
    path: list[str] = []
    while isinstance(node, ast.Select):
        path.append(node.field)
        node = node.operand
    if isinstance(node, ast.Ident):
        path.reverse()
        return node.name, path
    return None


class _Needs:
    def __init__(self, var: str) -> None:
        self.var = var
        self.needs: dict[str, Need] = {}

    def add(self, body: str, need: Need) -> None:
        self.needs[body] = merge_need(self.needs.get(body), need)

    def everything(self) -> None:
        for body in BODIES:
            self.add(body, WHOLE)

    def use(self, path: list[str], leaf: Need) -> None:
        if not path:
            self.everything()  # ``audit`` itself
        elif path[0] in BODIES:
            self.add(path[0], _path_need(path[1:], leaf))

    def visit(self, node: ast.Node) -> None:
        if isinstance(node, ast.Select):
            chain = _chain(node)
            if chain is not None:
                if chain[0] == self.var:
                    self.use(chain[1], WHOLE)
                return
        elif isinstance(node, ast.Has):
            chain = _chain(node.operand)
            if chain is not None:
                if chain[0] == self.var:
                    self.use([*chain[1], node.field], PRESENT)
                return
        elif isinstance(node, ast.Ident):
            if node.name == self.var:
                self.everything()
            return
        elif isinstance(node, ast.Comprehension) and node.var == self.var:
            self.everything()  # shadowing: give up
        elif isinstance(node, ast.Call) and node.function == "type" and len(node.args) == 1:
            chain = _chain(node.args[0])
            if chain is not None and chain[0] == self.var and chain[1]:
                self.use(chain[1], {})  # only the type: an empty map stays a map
                return
        elif isinstance(node, ast.Call) and node.function == "link" and len(node.args) == 2:
            chain = _chain(node.args[1])
            if chain is not None and chain[0] == self.var:
                self.visit(node.args[0])
                self.use(chain[1], LINK_NEED)
                return
        for child in _children(node):
            self.visit(child)


def _children(node: ast.Node) -> Iterable[ast.Node]:
    for value in vars(node).values():
        if isinstance(value, ast.Node):
            yield value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, ast.Node):
                    yield item
                elif isinstance(item, tuple):
                    yield from (x for x in item if isinstance(x, ast.Node))


def body_needs(nodes: Iterable[ast.Node], var: str = "audit") -> dict[str, Need]:
    """The body paths ``nodes`` read: ``{"requestObject": need, "responseObject": need}``.

    A body absent from the result is not read at all.
    """
    collector = _Needs(var)
    for node in nodes:
        collector.visit(node)
    return collector.needs


@dataclass(frozen=True, slots=True)
class Guard:
    """A conjunct ``<field> in values`` (``==`` is a one-value set) of a match's ``&&`` chain.

    ``field`` is ``verb``, ``subresource`` or ``actor`` (``actorRef.type``: audit) or ``reason``
    (event); ``absent`` is True for ``!has(audit.objectRef.subresource)`` (the field must be
    missing; ``values`` is empty).
    """

    field: str
    values: frozenset[str]
    absent: bool = False


_GUARD_PATHS = {
    ("audit", ("verb",)): "verb",
    ("audit", ("objectRef", "subresource")): "subresource",
    ("actorRef", ("type",)): "actor",
    ("event", ("reason",)): "reason",
}


def _conjuncts(node: ast.Node) -> Iterable[ast.Node]:
    if isinstance(node, ast.And):
        yield from _conjuncts(node.left)
        yield from _conjuncts(node.right)
    else:
        yield node


def _field_of(node: ast.Node) -> str | None:
    chain = _chain(node)
    if chain is None:
        return None
    return _GUARD_PATHS.get((chain[0], tuple(chain[1])))


def _string_literal(node: ast.Node) -> str | None:
    if isinstance(node, ast.Literal) and type(node.value) is str:
        return node.value
    return None


def _guard(node: ast.Node) -> Guard | None:
    if isinstance(node, ast.Binary) and node.op == "==":
        for left, right in ((node.left, node.right), (node.right, node.left)):
            field, lit = _field_of(left), _string_literal(right)
            if field is not None and lit is not None:
                return Guard(field, frozenset((lit,)))
    if isinstance(node, ast.Binary) and node.op == "in" and isinstance(node.right, ast.ListLit):
        field = _field_of(node.left)
        lits = [_string_literal(i) for i in node.right.items]
        if field is not None and lits and all(x is not None for x in lits):
            return Guard(field, frozenset(x for x in lits if x is not None))
    if isinstance(node, ast.Not) and isinstance(node.operand, ast.Has):
        has = node.operand
        chain = _chain(has.operand)
        if chain == ("audit", ["objectRef"]) and has.field == "subresource":
            return Guard("subresource", frozenset(), absent=True)
    return None


def guards(node: ast.Node) -> tuple[Guard, ...]:
    """The guards among the top-level ``&&`` conjuncts of a match expression."""
    return tuple(g for g in map(_guard, _conjuncts(node)) if g is not None)
