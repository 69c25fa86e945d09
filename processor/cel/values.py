"""CEL runtime values and the operators on them, with cel-go semantics.

Data layout: JSON data stays as plain Python values (``dict``, ``list``, ``str``, ``float``,
``bool``, ``None``); every JSON number is a ``float`` (cel-go's ``double``). CEL ``int`` literals
and results are ``int``; ``uint`` is :class:`UInt`; ``bytes`` is ``bytes``; timestamps are aware
``datetime`` objects in UTC and durations ``timedelta``; type values are :class:`TypeValue`.

Runtime errors are raised as :class:`~processor.errors.CelEvalError`; the logical operators of
the evaluation plan absorb them the CEL way.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from processor.errors import CelEvalError

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
UINT_MAX = 2**64 - 1


class UInt(int):
    """A CEL ``uint`` (distinct from ``int`` for equality, ``type()`` and overloads)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


class TypeValue:
    """A CEL type value, the result of ``type(x)`` or a type name such as ``string``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TypeValue) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name


_TYPE_NAMES: dict[type, str] = {
    str: "string",
    bool: "bool",
    float: "double",
    int: "int",
    UInt: "uint",
    type(None): "null_type",
    dict: "map",
    list: "list",
    bytes: "bytes",
    datetime: "google.protobuf.Timestamp",
    timedelta: "google.protobuf.Duration",
    TypeValue: "type",
}
_NUMERIC = (int, float, UInt)
_ORDERED = (str, float, int, UInt, bool, bytes, datetime, timedelta)


def type_name(value: Any) -> str:
    """The CEL type name of a runtime value (``string``, ``double``, ``map``...)."""
    try:
        return _TYPE_NAMES[type(value)]
    except KeyError:
        raise CelEvalError(f"unsupported value type {type(value).__name__}") from None


def no_overload(name: str = "", *args: Any) -> CelEvalError:
    """cel-go's "no such overload" runtime error."""
    if name:
        return CelEvalError(f"no such overload: {name}({', '.join(type_name(a) for a in args)})")
    return CelEvalError("no such overload")


def cel_eq(a: Any, b: Any) -> bool:
    """CEL equality: heterogeneous values are unequal (no error); numbers compare by value."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is list:
            return len(a) == len(b) and all(cel_eq(x, y) for x, y in zip(a, b, strict=True))
        if ta is dict:
            if len(a) != len(b):
                return False
            for k, v in a.items():
                found = _map_lookup(b, k)
                if found is _MISSING or not cel_eq(v, found):
                    return False
            return True
        return bool(a == b)
    if ta in _NUMERIC and tb in _NUMERIC:
        return bool(a == b)
    return False


_MISSING = object()


def _map_lookup(m: dict, key: Any) -> Any:
    """Look a key up in a CEL map; numeric keys match across int, uint and double."""
    tk = type(key)
    if tk is str:
        return m.get(key, _MISSING)
    numeric = tk in _NUMERIC
    for k, v in m.items():
        if (type(k) in _NUMERIC if numeric else type(k) is tk) and k == key:
            return v
    return _MISSING


def map_get(m: dict, key: Any) -> Any:
    """``m[key]`` for a CEL map: ``no such key`` when absent."""
    if type(key) is str:
        try:
            return m[key]
        except KeyError:
            raise CelEvalError(f"no such key: {key}") from None
    found = _map_lookup(m, key)
    if found is _MISSING:
        raise CelEvalError(f"no such key: {key}")
    return found


def map_has(m: dict, key: Any) -> bool:
    if type(key) is str:
        return key in m
    return _map_lookup(m, key) is not _MISSING


def check_ordered(a: Any, b: Any, op: str) -> None:
    """Raise unless ``a op b`` is a defined CEL ordering (same type, or both numeric)."""
    ta = type(a)
    tb = type(b)
    if ta is tb and ta in _ORDERED:
        return
    if ta in _NUMERIC and tb in _NUMERIC:
        return
    raise no_overload(op, a, b)


def cel_in(item: Any, container: Any) -> bool:
    """``item in container`` for lists (CEL equality) and maps (key presence)."""
    tc = type(container)
    if tc is list:
        if type(item) is str:  # a str equals only a str, so Python's ``in`` is exact here
            return item in container
        return any(cel_eq(item, x) for x in container)
    if tc is dict:
        return map_has(container, item)
    raise no_overload("@in", item, container)


def check_int(value: int) -> int:
    if value < INT_MIN or value > INT_MAX:
        raise CelEvalError("integer overflow")
    return value


def check_uint(value: int) -> UInt:
    if value < 0 or value > UINT_MAX:
        raise CelEvalError("unsigned integer overflow")
    return UInt(value)


def add(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is int:
            return check_int(a + b)
        if ta is float or ta is str or ta is bytes or ta is list or ta is timedelta:
            return a + b
        if ta is UInt:
            return check_uint(a + b)
    elif (ta is datetime and tb is timedelta) or (ta is timedelta and tb is datetime):
        return a + b
    raise no_overload("_+_", a, b)


def sub(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is int:
            return check_int(a - b)
        if ta is float or ta is timedelta or ta is datetime:
            return a - b
        if ta is UInt:
            return check_uint(a - b)
    elif ta is datetime and tb is timedelta:
        return a - b
    raise no_overload("_-_", a, b)


def mul(a: Any, b: Any) -> Any:
    ta = type(a)
    if ta is type(b):
        if ta is int:
            return check_int(a * b)
        if ta is float:
            return a * b
        if ta is UInt:
            return check_uint(a * b)
    raise no_overload("_*_", a, b)


def div(a: Any, b: Any) -> Any:
    ta = type(a)
    if ta is type(b):
        if ta is float:
            if b == 0.0:
                if a == 0.0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
        if ta is int or ta is UInt:
            if b == 0:
                raise CelEvalError("division by zero")
            q = abs(a) // abs(b)
            q = q if (a >= 0) == (b >= 0) else -q
            return check_int(q) if ta is int else UInt(q)
    raise no_overload("_/_", a, b)


def mod(a: Any, b: Any) -> Any:
    ta = type(a)
    if ta is type(b) and (ta is int or ta is UInt):
        if b == 0:
            raise CelEvalError("modulus by zero")
        if ta is int and a == INT_MIN and b == -1:  # cel-go's moduloInt64Checked
            raise CelEvalError("integer overflow")
        r = abs(a) % abs(b)
        r = -r if a < 0 else r
        return r if ta is int else UInt(r)
    raise no_overload("_%_", a, b)


def neg(a: Any) -> Any:
    ta = type(a)
    if ta is int:
        return check_int(-a)
    if ta is float:
        return -a
    if ta is timedelta:
        return -a
    raise no_overload("-_", a)
