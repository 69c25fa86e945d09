"""The CEL standard library subset (cel-go v0.27, no extensions): declarations and runtime.

Each :class:`Function` carries its overloads for the type checker and one runtime implementation
that dispatches on the Python types of its arguments. Receiver-style calls (``s.size()``) pass the
receiver as the first argument. ``link()`` is declared here but evaluated by the plan, because it
writes to the per-evaluation link collector.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from processor.cel import types as t
from processor.cel.format import go_duration, go_float, rfc3339
from processor.cel.values import INT_MAX, INT_MIN, UINT_MAX, TypeValue, UInt, no_overload, type_name
from processor.errors import CelEvalError

A = t.CelType("A")
B = t.CelType("B")


@dataclass(frozen=True)
class Overload:
    receiver: bool
    params: tuple[t.CelType, ...]
    result: t.CelType


@dataclass(frozen=True)
class Function:
    name: str
    overloads: tuple[Overload, ...]
    impl: Callable[..., Any] | None


def _g(*sig: t.CelType) -> Overload:
    return Overload(False, sig[:-1], sig[-1])


def _r(*sig: t.CelType) -> Overload:
    return Overload(True, sig[:-1], sig[-1])


# -- implementations -------------------------------------------------------------------------
def _size(x: Any) -> int:
    if type(x) in (str, bytes, list, dict):
        return len(x)
    raise no_overload("size", x)


def _str_pair(name: str) -> Callable[[Any, Any], Any]:
    method = {"contains": str.__contains__, "startsWith": str.startswith, "endsWith": str.endswith}[
        name
    ]

    def impl(s: Any, arg: Any) -> bool:
        if type(s) is str and type(arg) is str:
            return bool(method(s, arg))
        raise no_overload(name, s, arg)

    return impl


@lru_cache(maxsize=512)
def compile_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise CelEvalError(f"invalid regular expression {pattern!r}: {exc}") from None


def _matches(s: Any, pattern: Any) -> bool:
    if type(s) is str and type(pattern) is str:
        return compile_regex(pattern).search(s) is not None
    raise no_overload("matches", s, pattern)


_INT_SYNTAX = re.compile(r"[+-]?[0-9]+")
_UINT_SYNTAX = re.compile(r"[0-9]+")


def _to_int(x: Any) -> int:
    tx = type(x)
    if tx is int:
        return x
    if tx is UInt:
        if x > INT_MAX:
            raise CelEvalError("integer overflow")
        return int(x)
    if tx is float:
        # cel-go's doubleToInt64Checked: both bounds exclusive (-2**63 itself overflows)
        if math.isnan(x) or math.isinf(x) or not INT_MIN < x < 2.0**63:
            raise CelEvalError("integer overflow")
        return int(x)
    if tx is str:
        if _INT_SYNTAX.fullmatch(x) is None:  # Go's ParseInt: no spaces, "_" or non-ASCII digits
            raise CelEvalError(f'strconv.ParseInt: parsing "{x}": invalid syntax')
        v = int(x, 10)
        if not INT_MIN <= v <= INT_MAX:
            raise CelEvalError(f'strconv.ParseInt: parsing "{x}": value out of range')
        return v
    if tx is datetime:
        return int(x.timestamp() // 1)
    if tx is timedelta:  # nanoseconds (cel-go duration_to_int)
        return ((x.days * 86400 + x.seconds) * 1_000_000 + x.microseconds) * 1000
    raise no_overload("int", x)


def _to_uint(x: Any) -> UInt:
    tx = type(x)
    if tx is UInt:
        return x
    if tx is int:
        if x < 0:
            raise CelEvalError("unsigned integer overflow")
        return UInt(x)
    if tx is float:
        if math.isnan(x) or not 0 <= x < 2.0**64:
            raise CelEvalError("unsigned integer overflow")
        return UInt(int(x))
    if tx is str:
        if _UINT_SYNTAX.fullmatch(x) is None:  # Go's ParseUint: ASCII digits only, no sign
            raise CelEvalError(f'strconv.ParseUint: parsing "{x}": invalid syntax')
        v = int(x, 10)
        if not 0 <= v <= UINT_MAX:
            raise CelEvalError(f'strconv.ParseUint: parsing "{x}": value out of range')
        return UInt(v)
    raise no_overload("uint", x)


def _to_double(x: Any) -> float:
    tx = type(x)
    if tx is float:
        return x
    if tx is int or tx is UInt:
        return float(x)
    if tx is str:
        try:
            if not x.isascii() or "_" in x or x != x.strip():  # Go's ParseFloat rejects these
                raise ValueError(x)
            return float(x)
        except ValueError:
            raise CelEvalError(f'strconv.ParseFloat: parsing "{x}": invalid syntax') from None
    raise no_overload("double", x)


def _to_string(x: Any) -> str:
    tx = type(x)
    if tx is str:
        return x
    if tx is bool:
        return "true" if x else "false"
    if tx is int or tx is UInt:
        return str(int(x))
    if tx is float:
        return go_float(x)
    if tx is bytes:
        try:
            return x.decode("utf-8")
        except UnicodeDecodeError:
            raise CelEvalError("invalid UTF-8 in bytes, cannot convert to string") from None
    if tx is datetime:
        return rfc3339(x)
    if tx is timedelta:
        text = format(Decimal(repr(x.total_seconds())), "f")
        return (text.rstrip("0").rstrip(".") if "." in text else text) + "s"
    raise no_overload("string", x)


def _to_bytes(x: Any) -> bytes:
    if type(x) is bytes:
        return x
    if type(x) is str:
        return x.encode("utf-8")
    raise no_overload("bytes", x)


_BOOL_STRINGS = {
    "1": True,
    "t": True,
    "T": True,
    "TRUE": True,
    "true": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "FALSE": False,
    "false": False,
    "False": False,
}


def _to_bool(x: Any) -> bool:
    if type(x) is bool:
        return x
    if type(x) is str:
        try:
            return _BOOL_STRINGS[x]
        except KeyError:
            raise CelEvalError(f'strconv.ParseBool: parsing "{x}": invalid syntax') from None
    raise no_overload("bool", x)


def _type(x: Any) -> TypeValue:
    return TypeValue(type_name(x))


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(text: str) -> datetime:
    """Parse RFC 3339 with any fractional precision into an aware UTC datetime."""
    m = _RFC3339.match(text)
    if m is None:
        raise ValueError(f"cannot parse {text!r} as RFC 3339")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = m.group(8)
    tz = UTC
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz).astimezone(UTC)


def _to_timestamp(x: Any) -> datetime:
    if type(x) is datetime:
        return x
    if type(x) is int:
        return datetime.fromtimestamp(x, UTC)
    if type(x) is str:
        try:
            return parse_rfc3339(x)
        except ValueError as exc:
            raise CelEvalError(f"timestamp conversion error: {exc}") from None
    raise no_overload("timestamp", x)


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_US = {"ns": 0.001, "us": 1, "µs": 1, "μs": 1, "ms": 1000, "s": 1e6, "m": 6e7, "h": 3.6e9}


def _to_duration(x: Any) -> timedelta:
    if type(x) is timedelta:
        return x
    if type(x) is int:  # nanoseconds (cel-go int_to_duration)
        return timedelta(microseconds=x // 1000)
    if type(x) is not str:
        raise no_overload("duration", x)
    text = x
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return timedelta(0)
    pos, micros = 0, 0.0
    for m in _DURATION_PART.finditer(body):
        if m.start() != pos:
            break
        micros += float(m.group(1)) * _UNIT_US[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise CelEvalError(f'time: invalid duration "{text}"')
    return timedelta(microseconds=sign * micros)


def _in_zone(ts: Any, zone: Any = None) -> datetime:
    if type(ts) is not datetime or (zone is not None and type(zone) is not str):
        raise no_overload("timestamp accessor", ts)
    if zone is None:
        return ts
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", zone)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        offset = sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return ts.astimezone(timezone(offset))
    try:
        return ts.astimezone(ZoneInfo(zone))
    except Exception:
        raise CelEvalError(f"unknown time zone {zone!r}") from None


def _ts_accessor(name: str, part: Callable[[datetime], int]) -> Callable[..., int]:
    def impl(ts: Any, zone: Any = None) -> int:
        return part(_in_zone(ts, zone))

    impl.__name__ = name
    return impl


def _time_accessor(
    name: str, ts_part: Callable[[datetime], int], dur_us: int
) -> Callable[..., int]:
    def impl(x: Any, zone: Any = None) -> int:
        if type(x) is timedelta and zone is None:
            total_us = (x.days * 86400 + x.seconds) * 1_000_000 + x.microseconds
            return int(total_us / dur_us)
        return ts_part(_in_zone(x, zone))

    impl.__name__ = name
    return impl


# -- declarations ----------------------------------------------------------------------------
_TS, _DUR, _S = t.TIMESTAMP, t.DURATION, t.STRING


def _timestamp_overloads(result: t.CelType = t.INT) -> tuple[Overload, ...]:
    return (_r(_TS, result), _r(_TS, _S, result))


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function(
            "size",
            (
                _g(t.STRING, t.INT),
                _g(t.BYTES, t.INT),
                _g(t.list_of(A), t.INT),
                _g(t.map_of(A, B), t.INT),
                _r(t.STRING, t.INT),
                _r(t.BYTES, t.INT),
                _r(t.list_of(A), t.INT),
                _r(t.map_of(A, B), t.INT),
            ),
            _size,
        ),
        Function("contains", (_r(_S, _S, t.BOOL),), _str_pair("contains")),
        Function("startsWith", (_r(_S, _S, t.BOOL),), _str_pair("startsWith")),
        Function("endsWith", (_r(_S, _S, t.BOOL),), _str_pair("endsWith")),
        Function("matches", (_r(_S, _S, t.BOOL), _g(_S, _S, t.BOOL)), _matches),
        Function(
            "int", tuple(_g(x, t.INT) for x in (t.INT, t.UINT, t.DOUBLE, _S, _TS, _DUR)), _to_int
        ),
        Function("uint", tuple(_g(x, t.UINT) for x in (t.INT, t.UINT, t.DOUBLE, _S)), _to_uint),
        Function(
            "double", tuple(_g(x, t.DOUBLE) for x in (t.INT, t.UINT, t.DOUBLE, _S)), _to_double
        ),
        Function(
            "string",
            tuple(_g(x, _S) for x in (_S, t.INT, t.UINT, t.DOUBLE, t.BOOL, t.BYTES, _TS, _DUR)),
            _to_string,
        ),
        Function("bytes", (_g(_S, t.BYTES), _g(t.BYTES, t.BYTES)), _to_bytes),
        Function("bool", (_g(t.BOOL, t.BOOL), _g(_S, t.BOOL)), _to_bool),
        Function("dyn", (_g(A, t.DYN),), lambda x: x),
        Function("type", (_g(A, t.TYPE),), _type),
        Function("timestamp", (_g(_S, _TS), _g(_TS, _TS), _g(t.INT, _TS)), _to_timestamp),
        Function("duration", (_g(_S, _DUR), _g(_DUR, _DUR), _g(t.INT, _DUR)), _to_duration),
        Function(
            "getFullYear", _timestamp_overloads(), _ts_accessor("getFullYear", lambda d: d.year)
        ),
        Function(
            "getMonth", _timestamp_overloads(), _ts_accessor("getMonth", lambda d: d.month - 1)
        ),
        Function(
            "getDayOfYear",
            _timestamp_overloads(),
            _ts_accessor("getDayOfYear", lambda d: d.timetuple().tm_yday - 1),
        ),
        Function(
            "getDayOfMonth",
            _timestamp_overloads(),
            _ts_accessor("getDayOfMonth", lambda d: d.day - 1),
        ),
        Function("getDate", _timestamp_overloads(), _ts_accessor("getDate", lambda d: d.day)),
        Function(
            "getDayOfWeek",
            _timestamp_overloads(),
            _ts_accessor("getDayOfWeek", lambda d: (d.weekday() + 1) % 7),
        ),
        Function(
            "getHours",
            (*_timestamp_overloads(), _r(_DUR, t.INT)),
            _time_accessor("getHours", lambda d: d.hour, 3_600_000_000),
        ),
        Function(
            "getMinutes",
            (*_timestamp_overloads(), _r(_DUR, t.INT)),
            _time_accessor("getMinutes", lambda d: d.minute, 60_000_000),
        ),
        Function(
            "getSeconds",
            (*_timestamp_overloads(), _r(_DUR, t.INT)),
            _time_accessor("getSeconds", lambda d: d.second, 1_000_000),
        ),
        Function(
            "getMilliseconds",
            (*_timestamp_overloads(), _r(_DUR, t.INT)),
            _time_accessor("getMilliseconds", lambda d: d.microsecond // 1000, 1000),
        ),
        Function("link", (_g(_S, t.DYN, _S),), None),
    )
}

__all__ = ["FUNCTIONS", "Function", "Overload", "compile_regex", "go_duration", "parse_rfc3339"]
