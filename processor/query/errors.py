"""Errors of the query layer; all are user errors (not retriable) unless the store failed."""

from __future__ import annotations

from processor.errors import ProcessorError


class QueryError(ProcessorError, ValueError):
    """A query request is invalid (bad flag value, bad time, bad limit...)."""


class FilterError(QueryError):
    """A CEL filter or field selector cannot be translated; the message names the construct."""


class TimeRangeError(QueryError):
    """A time value or a time window is invalid (syntax, future, order, too long)."""


class CursorError(QueryError):
    """A continue token is malformed, expired or belongs to other query parameters."""
