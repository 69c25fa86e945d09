"""Shared JSON helpers for the record decoders: parse, JSON type names, numbers to float."""

from __future__ import annotations

from typing import Any

import orjson

from processor.errors import RecordError

__all__ = ["a_json_type", "floatify", "json_type", "load_object"]

_DUMP_OPTS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def load_object(
    raw: bytes | bytearray | memoryview | str | dict[str, Any], what: str, copy: bool = True
) -> Any:
    """Parse ``raw`` with orjson; a dict is deep-copied through JSON (YAML datetimes -> strings).

    Returns whatever the JSON holds (the caller checks it is an object). With ``copy=False`` a
    dict is returned as is: the caller owns it (e.g. freshly parsed) and lets it be changed.

    Raises:
        RecordError: the payload is not valid JSON.
    """
    if not isinstance(raw, bytes | bytearray | memoryview | str):  # already decoded
        if not copy or not isinstance(raw, dict | list):
            return raw
        try:
            raw = orjson.dumps(raw, option=_DUMP_OPTS)
        except TypeError as exc:
            raise RecordError(f"{what}: cannot encode input as JSON: {exc}") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"{what}: invalid JSON: {exc}") from None


def json_type(value: Any) -> str:
    """The JSON type name Go's decoder uses in its messages."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def a_json_type(value: Any) -> str:
    """``a number``, ``an array``, ``null``: a JSON value's type for a reason text."""
    name = json_type(value)
    return name if name == "null" else f"an {name}" if name[0] in "aeiou" else f"a {name}"


def floatify(value: Any) -> Any:
    """Turn every integer into a float, in place for containers (Go decodes numbers as float64).

    Returns the (possibly replaced) value.
    """
    t = type(value)
    if t is int:
        return float(value)
    if t is dict:
        _floatify_dict(value)
    elif t is list:
        _floatify_list(value)
    return value


def _floatify_dict(d: dict[str, Any]) -> None:
    for k, v in d.items():
        t = type(v)
        if t is int:
            d[k] = float(v)
        elif t is dict:
            _floatify_dict(v)
        elif t is list:
            _floatify_list(v)


def _floatify_list(items: list[Any]) -> None:
    for i, v in enumerate(items):
        t = type(v)
        if t is int:
            items[i] = float(v)
        elif t is dict:
            _floatify_dict(v)
        elif t is list:
            _floatify_list(v)
