"""Go-compatible rendering of CEL values: ``fmt.Sprintf("%v", v)`` and ``strconv.Quote``.

Upstream substitutes each template block with Go's ``%v`` of the result, so numbers, lists and
maps must print exactly as Go prints them (``1.234567e+06``, ``[a b]``, ``map[k:v]``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from processor.cel.values import TypeValue, UInt


def go_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 64)``, which is also ``%v``.

    Shortest round-trip digits (Python's ``repr`` finds the same ones); exponent notation when the
    decimal exponent is < -4 or >= 6 (Go fixes the cutoff at 6 for the shortest form), the
    exponent signed and at least two digits: ``1.234567e+06``, ``1e-05``, ``123456``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0.0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    # value = 0.digits * 10**(point); decimal exponent of the leading digit is point - 1
    point = len(digit_tuple) + int(exponent)
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{prefix}0.{'0' * (-exp - 1)}{digits}"
    if len(digits) <= point:
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def go_duration(value: timedelta) -> str:
    """Go's ``time.Duration.String()`` (``1h30m0s``, ``1.5s``, ``0s``)."""
    total_us = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    if total_us == 0:
        return "0s"
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    if total_us < 1_000_000:
        if total_us < 1000:
            return f"{sign}{total_us}µs"
        ms = Decimal(total_us) / 1000
        return f"{sign}{_trim(ms)}ms"
    hours, rem = divmod(total_us, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds = _trim(Decimal(rem) / 1_000_000)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{seconds}s"


def _trim(d: Decimal) -> str:
    text = format(d, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def go_time(value: datetime) -> str:
    """Go's ``time.Time.String()`` for a UTC time (``2024-01-15 10:30:00 +0000 UTC``)."""
    base = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        base += ("." + f"{value.microsecond:06d}").rstrip("0")
    return base + " +0000 UTC"


def rfc3339(value: datetime) -> str:
    """RFC 3339 with nanosecond-style trimmed fraction, as cel-go's ``string(timestamp)``."""
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        base += ("." + f"{value.microsecond:06d}").rstrip("0")
    return base + "Z"


def go_format(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` for a CEL result, as upstream renders template blocks."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is float:
        return go_float(value)
    if t is int or t is UInt:
        return str(int(value))
    if value is None:
        return "NULL_VALUE"
    if t is list:
        return "[" + " ".join(_go_element(v) for v in value) + "]"
    if t is dict:
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{_go_element(k)}:{_go_element(v)}" for k, v in items) + "]"
    if t is bytes:
        return "[" + " ".join(str(b) for b in value) + "]"
    if t is datetime:
        return go_time(value)
    if t is timedelta:
        return go_duration(value)
    if t is TypeValue:
        return value.name
    return str(value)


def _go_element(value: Any) -> str:
    # Inside a list or map from the input, a JSON null is a Go nil: ``[a <nil>]``. Only a
    # top-level CEL null is the protobuf enum (``NULL_VALUE``).
    return "<nil>" if value is None else go_format(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    # Go's fmt sorts map keys by value within one type; mixed key types are rare (CEL literals).
    if type(key) is str:
        return (1, key)
    if type(key) is bool:
        return (0, key)
    if type(key) in (int, float, UInt):
        return (0, float(key))
    return (2, repr(key))


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double-quoted, escapes for control and non-printable runes."""
    out = ['"']
    for ch in text:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)
