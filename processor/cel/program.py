"""Compile a CEL expression once: parse (celpy), type-check, build the evaluation plan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from processor.cel import ast
from processor.cel.checker import check
from processor.cel.env import Environment
from processor.cel.plan import LINKS, compile_plan
from processor.cel.types import CelType
from processor.errors import CelCompileError, CelEvalError

if TYPE_CHECKING:
    from processor.native import Implementation


class Program:
    """A compiled CEL expression.

    Attributes:
        source: the expression text.
        result_type: its static type (``bool``, ``string``, ``dyn``...), printed as cel-go does.
        implementation: ``python`` or ``native``: whose ``compile_plan`` built the plan.
    """

    __slots__ = ("_plan", "env", "implementation", "node", "result_type", "source")

    def __init__(self, source: str, env: Environment, impl: Implementation | None = None) -> None:
        self.source = source
        self.env = env
        self.implementation = "python" if impl is None else impl.name
        self.node = ast.parse(source)
        self.result_type: CelType = check(self.node, env, source)
        # the evaluation plan, ``_plan(activation) -> value``; its Python errors are turned into
        # CelEvalError by evaluate (SummaryTemplate.render calls it directly, with eval_error)
        self._plan = (compile_plan if impl is None else impl.plan.compile_plan)(self.node)

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
        except PLAN_ERRORS as exc:
            raise eval_error(exc) from None

    def __repr__(self) -> str:
        return f"Program({self.source!r}, {self.env.name}, {self.result_type})"


#: The Python errors a plan may raise that are CEL runtime errors (see :func:`eval_error`).
PLAN_ERRORS = (RecursionError, TypeError, ValueError, OverflowError, ArithmeticError)


def eval_error(exc: BaseException) -> CelEvalError:
    """The CelEvalError for one of :data:`PLAN_ERRORS` raised by a plan."""
    if isinstance(exc, RecursionError):
        return CelEvalError("evaluation exceeded the recursion limit")
    return CelEvalError(str(exc))


_CACHE: dict[tuple[str, str, str], Program | CelCompileError] = {}
_CACHE_LIMIT = 20_000


def compile_expr(source: str, env: Environment, impl: Implementation | None = None) -> Program:
    """Compile ``source`` in ``env``, memoised (policies repeat the same expressions).

    ``impl`` builds the plan with its ``plan`` unit (None: the twin, :mod:`processor.cel.plan`).

    Raises:
        CelCompileError: a syntax error, unsupported construct or type error, in cel-go's layout.
    """
    key = (source, env.name, "python" if impl is None else impl.name)
    hit = _CACHE.get(key)
    if hit is None:
        try:
            hit = Program(source, env, impl)
        except CelCompileError as exc:
            hit = exc
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = hit
    if isinstance(hit, CelCompileError):
        raise CelCompileError(str(hit))
    return hit
