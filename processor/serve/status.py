"""Errors as Kubernetes ``Status`` objects (what kubectl prints), and the query layer's errors
mapped to them.

A bad request body or parameter is ``422 Invalid`` with one cause per field (kubectl prints
``The AuditLogQuery "q" is invalid: spec.startTime: Invalid value: ...``); a bad list parameter
(field selector, continue token of a list) ``400 BadRequest``; a missing object ``404 NotFound``;
no credential ``401 Unauthorized``; a store failure ``503 ServiceUnavailable`` with upstream's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processor.query.errors import CursorError, FilterError, QueryError, TimeRangeError

#: the API group and version served (``processor.preview.API_VERSION`` is the same)
GROUP = "activity.miloapis.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "AlreadyExists",
    415: "UnsupportedMediaType",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


@dataclass(frozen=True)
class Cause:
    """One field error: ``field``, a Kubernetes cause reason and the message."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ApiError(Exception):
    """An error answered as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        causes: Sequence[Cause] = (),
        kind: str = "",
        name: str = "",
        group: str = GROUP,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.causes = tuple(causes)
        self.kind = kind
        self.name = name
        self.group = group

    def status(self) -> dict[str, Any]:
        """The ``Status`` object."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": _REASONS.get(self.code, "Unknown"),
            "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.kind:
            details["group"] = self.group
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [
                {"reason": c.reason, "message": c.message, "field": c.field} for c in self.causes
            ]
        if details:
            out["details"] = details
        return out


def invalid(kind: str, name: str, causes: Sequence[Cause], group: str = GROUP) -> ApiError:
    """``422 Invalid`` in the API machinery's words: ``Kind.group "name" is invalid: [...]``."""
    texts = [c.text() for c in causes]
    listed = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        f'{qualified} "{name}" is invalid: {listed}',
        causes=causes,
        kind=kind,
        name=name,
        group=group,
    )


def required(field: str, message: str) -> Cause:
    return Cause(field, f"Required value: {message}", "FieldValueRequired")


def bad_value(field: str, value: Any, message: str) -> Cause:
    """``Invalid value: "x": message`` (the value quoted as Go's ``%q`` would for strings)."""
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return Cause(field, f"Invalid value: {shown}: {message}")


def cause_of(exc: QueryError, fields: dict[str, str], values: dict[str, Any]) -> Cause:
    """The cause of a query-layer error on the spec field it concerns.

    Args:
        exc: the error.
        fields: error class name (``filter``, ``cursor``, ``time``, ``other``) -> spec field.
        values: spec field -> the value given (echoed in the cause).
    """
    if isinstance(exc, CursorError):
        where = fields.get("cursor", "spec.continue")
    elif isinstance(exc, FilterError):
        where = fields.get("filter", "spec.filter")
    elif isinstance(exc, TimeRangeError):
        where = fields.get("time", "spec")
    else:
        where = fields.get("other", "spec")
    if where in values:
        return bad_value(where, values[where], str(exc))
    return Cause(where, f"Invalid value: {exc}")


def unavailable(message: str) -> ApiError:
    return ApiError(503, message)
