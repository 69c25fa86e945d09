"""Validation of rule expressions with upstream's messages (docs/design.md#policy-engine-2-5,
#policy-engine-3-4).

These are the checks the API server and the controller run; the loader attaches the result to
the rule's field path (``spec.auditRules[2].match``).
"""

from __future__ import annotations

import re

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


_POSITION = re.compile(r"<input>:(\d+):(\d+):")


def error_offset(message: str, source: str) -> int | None:
    """The offset in ``source`` of the ``<input>:LINE:COL`` a CEL error message names."""
    found = _POSITION.search(message)
    if found is None:
        return None
    line, column = int(found.group(1)), int(found.group(2))
    lines = source.split("\n")
    if not 0 < line <= len(lines):
        return None
    return sum(len(text) + 1 for text in lines[: line - 1]) + min(column - 1, len(lines[line - 1]))


def excerpt(text: str, offset: int) -> str:
    """The line of ``text`` holding ``offset``, with a caret under it (cel-go's drawing)."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    line = text[start : end if end >= 0 else len(text)]
    return f" | {line}\n | {'.' * (offset - start)}^"


def summary_problem(text: str, rule_type: str) -> tuple[str, int | None] | None:
    """:func:`validate_summary`'s message and the offset in ``text`` it is about (None: the
    whole summary), or None when the summary is valid."""
    env = environment(rule_type)
    if text.count("{{") != text.count("}}"):
        return "error compiling template: missing closing delimiter", None
    for block in find_blocks(text):
        if not block.expression:
            return f"empty expression in template: {block.text}", block.start
        base = block.start + block.text.index(block.expression)
        try:
            program = compile_expr(block.expression, env)
        except CelCompileError as exc:
            message = describe_compile_error("summary", exc, env)
            inner = error_offset(message, block.expression)
            return message, base + (inner or 0)
        result = str(program.result_type)
        if result not in ("string", "dyn"):
            return (
                f"expression '{{{{ {block.expression} }}}}' in summary must return a "
                f"string, got {result}"
            ), base
    return None


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
    problem = summary_problem(text, rule_type)
    return None if problem is None else problem[0]
