"""CEL for ActivityPolicies: cel-python parses, this package checks and evaluates with cel-go
semantics (docs/design.md#d1).

Public API:
    compile_expr(source, env) -> Program      (raises CelCompileError)
    Program.evaluate(variables, links=None)    (raises CelEvalError)
    Program.result_type                        (static type, e.g. ``bool``, ``dyn``)
    AUDIT_ENV, EVENT_ENV, ENVIRONMENTS         (the rule environments)
    go_format(value)                           (Go ``%v`` rendering used by templates)
"""

from typing import TYPE_CHECKING, Any

from processor.cel.env import AUDIT_ENV, ENVIRONMENTS, EVENT_ENV, FUNCTION_HINT, Environment
from processor.cel.format import go_format, go_quote

if TYPE_CHECKING:
    from processor.cel.program import Program, compile_expr

__all__ = [
    "AUDIT_ENV",
    "ENVIRONMENTS",
    "EVENT_ENV",
    "FUNCTION_HINT",
    "Environment",
    "Program",
    "compile_expr",
    "go_format",
    "go_quote",
]


def __getattr__(name: str) -> Any:
    # The compiler (checker, planner) is imported on first use: the evaluation plans of the
    # native extensions import this package, and `activity version` loads them to report the
    # implementation without compiling anything.
    if name in ("Program", "compile_expr"):
        from processor.cel import program

        return getattr(program, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
