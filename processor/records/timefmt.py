"""RFC3339 timestamps: lenient parsing (docs/design.md#d3) and the fixed output layouts.

Inputs are RFC3339 date-times with any fractional precision (or none) and any offset (``Z`` or
``±hh:mm``). Outputs are always UTC:

* :func:`micro` -- ``YYYY-MM-DDTHH:MM:SS.ffffffZ``, the audit ``MicroTime`` layout (6 digits);
* :func:`millis` -- ``YYYY-MM-DDTHH:MM:SS.fffZ``, the Activity ``creationTimestamp`` (3 digits);
* :func:`seconds` -- ``YYYY-MM-DDTHH:MM:SSZ``, the DLQ ``timestamp``.

Extra fractional digits are truncated, never rounded. The canonical input form (UTC, ``Z``, six
digits) is the common case and takes a fast path that only validates the calendar fields.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "micro",
    "micro_to_millis",
    "millis",
    "now_millis",
    "now_seconds",
    "parse",
    "seconds",
]

_RFC3339 = re.compile(  # re.ASCII: \d is [0-9] only
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)
_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", re.ASCII)
_ZERO = datetime(1, 1, 1, tzinfo=UTC)


def parse(value: str) -> datetime:
    """Parse an RFC3339 date-time into an aware UTC datetime (microsecond precision, truncated).

    Raises:
        ValueError: the string is not an RFC3339 date-time or names an impossible date/time.
    """
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(f'parsing time "{value}": not an RFC3339 date-time')
    year, month, day, hour, minute, sec, frac, z, sign, oh, om = m.groups()
    micro_part = int((frac or "0")[:6].ljust(6, "0"))
    try:
        dt = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(sec), micro_part, UTC
        )
    except ValueError as exc:
        raise ValueError(f'parsing time "{value}": {exc}') from None
    if z is None:
        off_h, off_m = int(oh), int(om)
        if off_h > 23 or off_m > 59:
            raise ValueError(f'parsing time "{value}": time zone offset out of range')
        offset = timedelta(hours=off_h, minutes=off_m)
        try:
            dt = dt - offset if sign == "+" else dt + offset
        except OverflowError:
            raise ValueError(f'parsing time "{value}": out of range') from None
    return dt


def micro(value: str) -> str | None:
    """Normalise an RFC3339 string to the 6-digit UTC layout; None for the zero time.

    Raises:
        ValueError: not an RFC3339 date-time.
    """
    if len(value) == 27 and _CANONICAL.fullmatch(value):
        # Already in the output layout: only the calendar fields need validating.
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f'parsing time "{value}": {exc}') from None
        return None if value == "0001-01-01T00:00:00.000000Z" else value
    dt = parse(value)
    if dt == _ZERO:
        return None
    return format_micro(dt)


def format_micro(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` of an aware UTC datetime."""
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond:06d}Z"
    )


def format_millis(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.fffZ`` of an aware datetime (converted to UTC, truncated)."""
    if dt.tzinfo is not None and dt.utcoffset():
        dt = dt.astimezone(UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def format_seconds(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of an aware datetime (converted to UTC, truncated)."""
    if dt.tzinfo is not None and dt.utcoffset():
        dt = dt.astimezone(UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"
    )


def micro_to_millis(value: str) -> str:
    """Millisecond layout of a string already in the :func:`micro` layout (no parsing)."""
    return value[:23] + "Z"


def millis(value: str) -> str:
    """Normalise any RFC3339 string to the millisecond UTC layout.

    Raises:
        ValueError: not an RFC3339 date-time.
    """
    n = len(value)
    if (n == 27 and _CANONICAL.fullmatch(value)) or (n == 20 and _SECONDS.fullmatch(value)):
        # UTC already: validate the calendar fields, then cut or pad the fraction.
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f'parsing time "{value}": {exc}') from None
        return value[:23] + "Z" if n == 27 else value[:19] + ".000Z"
    return format_millis(parse(value))


def seconds(value: str) -> str:
    """Normalise any RFC3339 string to the seconds UTC layout.

    Raises:
        ValueError: not an RFC3339 date-time.
    """
    return format_seconds(parse(value))


def now_millis() -> str:
    """The current time in the millisecond layout."""
    return format_millis(datetime.now(UTC))


def now_seconds() -> str:
    """The current time in the seconds layout."""
    return format_seconds(datetime.now(UTC))
