"""CEL for ActivityPolicies: cel-python parses, this package checks and evaluates with cel-go
semantics (docs/design.md#d1).

Public API:
    compile_expr(source, env) -> Program      (raises CelCompileError)
    Program.evaluate(variables, links=None)    (raises CelEvalError)
    Program.result_type                        (static type, e.g. ``bool``, ``dyn``)
    AUDIT_ENV, EVENT_ENV, ENVIRONMENTS         (the rule environments)
    go_format(value)                           (Go ``%v`` rendering used by templates)
"""

from processor.cel.env import AUDIT_ENV, ENVIRONMENTS, EVENT_ENV, FUNCTION_HINT, Environment
from processor.cel.format import go_format, go_quote
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
