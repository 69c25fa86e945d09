"""Validation of rule expressions with upstream's messages (docs/design.md#policy-engine-2-5,
#policy-engine-3-4).

These are the checks the API server and the controller run; the loader attaches the result to
the rule's field path (``spec.auditRules[2].match``).
"""

from __future__ import annotations

from processor.cel import ENVIRONMENTS, FUNCTION_HINT, Environment, compile_expr
from processor.errors import CelCompileError
from processor.policy.template import find_blocks


def environment(rule_type: str) -> Environment:
    """The CEL environment of a rule type (``audit`` or ``event``)."""
    try:
        return ENVIRONMENTS[rule_type]
    except KeyError:
        raise ValueError(f"unknown rule type {rule_type!r} (expected 'audit' or 'event')") from None


def describe_compile_error(context: str, error: CelCompileError, env: Environment) -> str:
    """Upstream's rewrite of a CEL compile error, with what is available to fix it.

    Only the first line of cel-go's message is kept (the caret drawing follows it), so that each
    problem prints on one line.
    """
    first = str(error).split("\n", 1)[0]
    if "undeclared reference" in first:
        return f"invalid {context} expression: {first}. {env.hint}. Also available: {FUNCTION_HINT}"
    if "found no matching overload" in first:
        return (
            f"invalid {context} expression: function call error - {first}. "
            f"Available function: {FUNCTION_HINT}"
        )
    return f"invalid {context} expression: {first}"


def validate_match(source: str, rule_type: str) -> str | None:
    """None when ``source`` is a valid match expression, else upstream's message."""
    env = environment(rule_type)
    if not source.strip():
        return "expression cannot be empty"
    try:
        program = compile_expr(source, env)
    except CelCompileError as exc:
        return describe_compile_error("match", exc, env)
    if str(program.result_type) != "bool":
        return f"match expression must return a boolean, got {program.result_type}"
    return None


def validate_summary(text: str, rule_type: str) -> str | None:
    """None when ``text`` is a valid summary template, else upstream's message (first problem)."""
    env = environment(rule_type)
    if text.count("{{") != text.count("}}"):
        return "error compiling template: missing closing delimiter"
    for block in find_blocks(text):
        if not block.expression:
            return f"empty expression in template: {block.text}"
        try:
            program = compile_expr(block.expression, env)
        except CelCompileError as exc:
            return describe_compile_error("summary", exc, env)
        result = str(program.result_type)
        if result not in ("string", "dyn"):
            return (
                f"expression '{{{{ {block.expression} }}}}' in summary must return a "
                f"string, got {result}"
            )
    return None
