"""The project's error hierarchy.

One root, :class:`ProcessorError`. Each class says whether it is *retriable*: a retriable failure
(an outage) is retried or nak'ed with a delay; a non-retriable one (bad input, a policy bug) is
dead-lettered with its reason.
"""

from __future__ import annotations


class ProcessorError(Exception):
    """Root of every error this project raises on purpose."""

    retriable = False


class PolicyError(ProcessorError, ValueError):
    """An invalid ActivityPolicy (or PolicyPreview manifest), located as precisely as possible.

    Attributes:
        message: what is wrong and how to fix it.
        path: the field path, e.g. ``spec.auditRules[2].summary`` ("" for the whole document).
        file: the file the document came from ("" when it did not come from a file).
        policy: ``metadata.name`` of the policy ("" when unknown).
        document: index of the YAML document in its file (0-based), or None.
        line, column: 1-based position of the field in the file, or None.
        excerpt: for an expression error, the field's line with a caret under the position the
            error names (two lines, ``" | text"`` and ``" | ....^"``), else "".
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        file: str = "",
        policy: str = "",
        document: int | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.file = file
        self.policy = policy
        self.document = document
        self.line = line
        self.column = column
        self.excerpt = ""

    def location(self) -> str:
        """``file:line:column`` (the parts that are known)."""
        loc = self.file or "<input>"
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        return loc

    def with_excerpt(self, text: str) -> str:
        """``text`` followed by the excerpt lines, when there is one."""
        return f"{text}\n{self.excerpt}" if self.excerpt else text

    def field_message(self) -> str:
        """``field.path: message`` (the form the preview command prints)."""
        return f"{self.path}: {self.message}" if self.path else self.message

    def __str__(self) -> str:
        policy = self.policy or "<unnamed>"
        return f"{self.location()}: {policy}: {self.field_message()}"


class PolicyErrors(ProcessorError, ValueError):
    """Several :class:`PolicyError` collected while loading or validating."""

    def __init__(self, errors: list[PolicyError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class CelCompileError(ProcessorError, ValueError):
    """A CEL expression failed to parse or type-check (cel-go style message)."""


class CelEvalError(ProcessorError):
    """A CEL runtime error (cel-go: "no such key: name", "no such overload", ...).

    Raised by evaluation plans; ``&&``, ``||`` and ``?:`` absorb it the CEL way.
    """


class TemplateError(ProcessorError):
    """A summary template failed to render; ``str()`` is the upstream message."""


class RecordError(ProcessorError, ValueError):
    """An input record cannot be decoded (dead-lettered as ``unmarshal``)."""


class KindResolveError(ProcessorError):
    """A plural resource could not be mapped to a Kind (dead-lettered as ``kind_resolve``)."""
