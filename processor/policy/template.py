"""Summary templates: text with ``{{ CEL }}`` blocks (docs/design.md#policy-engine-3).

Blocks are found exactly as upstream finds them, with the RE2 pattern ``\\{\\{\\s*(.+?)\\s*\\}\\}``
(``\\s`` is ASCII whitespace, ``.`` does not match a newline, non-greedy, leftmost-first; Python's
``re`` gives the same matches for this pattern). Each block's expression is compiled once; at run
time every block is evaluated, failed blocks are collected, and any failure fails the whole
summary with upstream's message. Values are substituted with Go's ``%v`` rendering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from processor.cel import Environment, Program, compile_expr, go_format, go_quote
from processor.cel.plan import LINKS
from processor.cel.program import PLAN_ERRORS, eval_error
from processor.errors import CelCompileError, CelEvalError, TemplateError

if TYPE_CHECKING:
    from processor.native import Implementation

BLOCK_RE = re.compile(r"\{\{[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\}\}")


@dataclass(frozen=True, slots=True)
class Block:
    """One ``{{ ... }}`` block: the whole matched text and its trimmed expression."""

    text: str
    expression: str
    start: int
    end: int


def find_blocks(template: str) -> list[Block]:
    """The blocks of ``template`` in order (upstream regex semantics, Go ``TrimSpace``)."""
    return [
        Block(m.group(0), m.group(1).strip(), m.start(), m.end())
        for m in BLOCK_RE.finditer(template)
    ]


class SummaryTemplate:
    """A summary template compiled once for one rule environment.

    Attributes:
        text: the template source.
        errors: compile errors per block (upstream marks such a rule invalid and skips it).
    """

    __slots__ = ("_parts", "errors", "static", "text")

    def __init__(self, text: str, env: Environment, impl: Implementation | None = None) -> None:
        self.text = text
        self.errors: list[str] = []
        # parts alternate: literal text (str) and (expression, Program | error message)
        parts: list[str | tuple[str, Program | str]] = []
        pos = 0
        for block in find_blocks(text):
            if block.start > pos:
                parts.append(text[pos : block.start])
            pos = block.end
            if not block.expression:
                message = f"empty expression in template: {block.text}"
                self.errors.append(message)
                parts.append((block.expression, f"compile {go_quote(block.expression)}: {message}"))
                continue
            try:
                parts.append((block.expression, compile_expr(block.expression, env, impl)))
            except CelCompileError as exc:
                self.errors.append(str(exc))
                parts.append((block.expression, f"compile {go_quote(block.expression)}: {exc}"))
        if pos < len(text):
            parts.append(text[pos:])
        self.static = all(isinstance(p, str) for p in parts)
        self._parts = parts

    @property
    def valid(self) -> bool:
        return not self.errors

    def programs(self) -> list[Program]:
        """The compiled programs of the blocks, in order (failed blocks left out)."""
        return [p[1] for p in self._parts if isinstance(p, tuple) and isinstance(p[1], Program)]

    def render(self, variables: dict, links: list | None = None) -> str:
        """Render with ``variables``; ``link()`` calls append ``(marker, ref)`` to ``links``.

        Raises:
            TemplateError: ``summary template evaluation failed: eval "<expr>": <err>`` (one
                line per failed block, every block being evaluated first).
        """
        if self.static:
            return self.text
        # One activation for every block, each plan called as Program.evaluate calls it (plans
        # do not change the activation: comprehensions bind their variables in a copy).
        act = {**variables, LINKS: [] if links is None else links}
        out: list[str] = []
        failures: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            expression, program = part
            if isinstance(program, str):
                failures.append(program)
                out.append(f"[ERROR: {program}]")
                continue
            try:
                try:
                    value = program._plan(act)
                except CelEvalError:
                    raise
                except PLAN_ERRORS as exc:
                    raise eval_error(exc) from None
                out.append(go_format(value))
            except CelEvalError as exc:
                failures.append(f"eval {go_quote(expression)}: {exc}")
                out.append(f"[ERROR: {exc}]")
        if failures:
            raise TemplateError("summary template evaluation failed: " + "\n".join(failures))
        return "".join(out)
