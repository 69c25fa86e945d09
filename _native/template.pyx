# cython: boundscheck=False, wraparound=False
"""Native summary templates: a template's parts rendered in C with one activation per render.

The twin is ``processor/policy/template.py``: the specification of every result and every error
(the same :class:`SummaryTemplate`: same text, same ``link()`` collection, same ``TemplateError``
messages). This file only makes it fast. :func:`find_blocks` stays the twin's alone, imported
when a template is compiled: importing ``processor.policy`` at load would import the policy
loader and YAML into ``activity version`` (tests/unit/test_cli_startup.py).

Layout: a template is compiled as the twin compiles it (blocks found by the twin's
:func:`find_blocks`, each expression compiled once by ``compile_expr`` with the implementation's
plans) into a list of typed parts: static text, a failed block (its compile message ready) or a
plan call (its ``eval "<expr>": `` prefix ready). :meth:`SummaryTemplate.render` walks the parts
in a C loop, calls each plan with the one activation (the variables plus the ``link()``
collector under :data:`LINKS`), and writes Go's ``%v`` of the common values in C: a string as
is, ``true``/``false``, an ``int`` or ``uint`` in decimal, ``NULL_VALUE`` for a CEL null.

Delegated to the twin's formatter, :func:`processor.cel.format.go_format` (a Python call at that
block): doubles (``go_float``), lists, maps, bytes, timestamps, durations and type values.
"""

from processor.cel import compile_expr, go_quote
from processor.cel.format import go_format
from processor.cel.plan import LINKS
from processor.cel.program import PLAN_ERRORS, eval_error
from processor.cel.values import UInt
from processor.errors import CelCompileError, CelEvalError, TemplateError

__all__ = ["SummaryTemplate"]

cdef object _UInt = UInt
cdef object _go_format = go_format
cdef object _CelEvalError = CelEvalError
cdef object _PLAN_ERRORS = PLAN_ERRORS
cdef object _eval_error = eval_error
cdef str _LINKS = LINKS

cdef enum PartKind:
    TEXT = 0
    FAILED = 1
    PLAN = 2


cdef class _Part:
    """One part: ``text`` is the static text (TEXT), the failure message (FAILED) or the
    ``eval "<expr>": `` prefix of a failure (PLAN); ``plan`` is the program's plan (PLAN)."""

    cdef PartKind kind
    cdef str text
    cdef object plan
    cdef object program


cdef _Part _part(PartKind kind, str text, object program):
    cdef _Part p = _Part.__new__(_Part)
    p.kind = kind
    p.text = text
    p.program = program
    p.plan = None if program is None else program._plan
    return p


cdef inline str _format(object value):
    """Go's ``%v`` of a CEL value (``go_format``); the common types in C."""
    cdef type t = type(value)
    if t is str:
        return <str>value
    if t is bool:
        return "true" if value is True else "false"
    if t is int:
        return str(value)
    if t is _UInt:
        return str(int(value))
    if value is None:
        return "NULL_VALUE"
    return _go_format(value)


cdef class SummaryTemplate:
    """A summary template compiled once for one rule environment (as the twin's).

    Attributes:
        text: the template source.
        errors: compile errors per block (upstream marks such a rule invalid and skips it).
        static: True when the template has no blocks (it renders as its text).
    """

    cdef readonly object text
    cdef readonly list errors
    cdef readonly bint static
    cdef list _parts

    def __init__(self, text, env, impl=None):
        cdef list parts = []
        cdef Py_ssize_t pos = 0
        cdef bint static = True
        from processor.policy.template import find_blocks

        self.text = text
        self.errors = []
        for block in find_blocks(text):
            if block.start > pos:
                parts.append(_part(TEXT, text[pos : block.start], None))
            pos = block.end
            static = False
            if not block.expression:
                message = f"empty expression in template: {block.text}"
                self.errors.append(message)
                parts.append(_part(FAILED, f"compile {go_quote(block.expression)}: {message}", None))
                continue
            try:
                program = compile_expr(block.expression, env, impl)
            except CelCompileError as exc:
                self.errors.append(str(exc))
                parts.append(_part(FAILED, f"compile {go_quote(block.expression)}: {exc}", None))
                continue
            parts.append(_part(PLAN, f"eval {go_quote(block.expression)}: ", program))
        if pos < len(text):
            parts.append(_part(TEXT, text[pos:], None))
        self.static = static
        self._parts = parts

    @property
    def valid(self):
        return not self.errors

    def programs(self):
        """The compiled programs of the blocks, in order (failed blocks left out)."""
        cdef _Part p
        cdef list programs = []
        for p in self._parts:
            if p.kind == PLAN:
                programs.append(p.program)
        return programs

    def render(self, variables, links=None):
        """Render with ``variables``; ``link()`` calls append ``(marker, ref)`` to ``links``.

        Raises:
            TemplateError: ``summary template evaluation failed: eval "<expr>": <err>`` (one
                line per failed block, every block being evaluated first).
        """
        if self.static:
            return self.text
        cdef dict act = {**variables}
        act[_LINKS] = [] if links is None else links
        cdef list out = []
        cdef list failures = None
        cdef _Part p
        cdef object value
        cdef str message
        for p in self._parts:
            if p.kind == TEXT:
                out.append(p.text)
                continue
            if p.kind == FAILED:
                if failures is None:
                    failures = []
                failures.append(p.text)
                out.append(f"[ERROR: {p.text}]")
                continue
            message = None
            try:
                value = p.plan(act)
            except _CelEvalError as exc:
                message = str(exc)
            except _PLAN_ERRORS as exc:
                message = str(_eval_error(exc))
            if message is None:
                try:
                    out.append(_format(value))
                    continue
                except _CelEvalError as exc:
                    message = str(exc)
            if failures is None:
                failures = []
            failures.append(p.text + message)
            out.append(f"[ERROR: {message}]")
        if failures is not None:
            raise TemplateError("summary template evaluation failed: " + "\n".join(failures))
        return "".join(out)
