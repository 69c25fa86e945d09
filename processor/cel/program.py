"""Compile a CEL expression once: parse (celpy), type-check, build the evaluation plan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processor.cel import ast
from processor.cel.checker import check
from processor.cel.env import Environment
from processor.cel.plan import LINKS, compile_plan
from processor.cel.types import CelType
from processor.errors import CelCompileError, CelEvalError


class Program:
    """A compiled CEL expression.

    Attributes:
        source: the expression text.
        result_type: its static type (``bool``, ``string``, ``dyn``...), printed as cel-go does.
    """

    __slots__ = ("_plan", "env", "native", "node", "result_type", "source")

    def __init__(self, source: str, env: Environment, native: bool = False) -> None:
        self.source = source
        self.env = env
        self.native = native
        self.node = ast.parse(source)
        self.result_type: CelType = check(self.node, env, source)
        self._plan = _plan_compiler(native)(self.node)

    def evaluate(self, variables: dict, links: list | None = None) -> Any:
        """Evaluate against an activation; ``links`` collects ``link()`` calls in order.

        Raises:
            CelEvalError: a CEL runtime error (missing key, no such overload, ...).
        """
        act = variables if links is None else {**variables, LINKS: links}
        try:
            return self._plan(act)
        except CelEvalError:
            raise
        except RecursionError:
            raise CelEvalError("evaluation exceeded the recursion limit") from None
        except (TypeError, ValueError, OverflowError, ArithmeticError) as exc:
            raise CelEvalError(str(exc)) from None

    def __repr__(self) -> str:
        return f"Program({self.source!r}, {self.env.name}, {self.result_type})"


def _plan_compiler(native: bool) -> Callable[[ast.Node], Any]:
    """The twin's :func:`compile_plan`, or the same source compiled by Cython (``native``)."""
    if not native:
        return compile_plan
    from processor.native import require

    return require("plan").compile_plan  # type: ignore[no-any-return]


_CACHE: dict[tuple[str, str, bool], Program | CelCompileError] = {}
_CACHE_LIMIT = 20_000


def compile_expr(source: str, env: Environment, native: bool = False) -> Program:
    """Compile ``source`` in ``env``, memoised (policies repeat the same expressions).

    ``native`` builds the plan with the Cython-compiled twin of :mod:`processor.cel.plan`.

    Raises:
        CelCompileError: a syntax error, unsupported construct or type error, in cel-go's layout.
    """
    key = (source, env.name, native)
    hit = _CACHE.get(key)
    if hit is None:
        try:
            hit = Program(source, env, native)
        except CelCompileError as exc:
            hit = exc
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = hit
    if isinstance(hit, CelCompileError):
        raise CelCompileError(str(hit))
    return hit
