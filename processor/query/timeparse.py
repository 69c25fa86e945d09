"""Time syntax of the query commands (docs/design.md#storage-query-3-0), parsed strictly.

Accepted: RFC3339 with an offset or ``Z`` and any number of fractional digits (kept to the
nanosecond), ``now`` and ``now-<N><unit>`` with unit ``s``, ``m``, ``h``, ``d`` (24 h) or ``w``
(7 d). Unlike upstream, trailing junk (``now-1.5h``, ``now-7dd``) is an error, not ignored, and
``d``/``w`` are exact days in UTC. Times after *now* are rejected. Instants are integers of
nanoseconds since the epoch (UTC), so no precision is lost in SQL parameters or cursors.
"""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

from processor.query.errors import TimeRangeError

NS = 1_000_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"now(?:-(\d{1,9})([smhdw]))?")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
#: Default longest window of audit and activity queries (upstream ``--max-query-window``).
DEFAULT_MAX_WINDOW_NS = 30 * 86400 * NS
#: Longest window of event queries (upstream: fixed 60 days).
EVENTS_MAX_WINDOW_NS = 60 * 86400 * NS


def duration_ns(text: str) -> int:
    """``30d``, ``12h``, ``90m``... (``<N><s|m|h|d|w>``) in nanoseconds; 0 when not of that form."""
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in _UNITS:
        return 0
    return int(number) * _UNITS[unit] * NS


def parse_rfc3339(text: str) -> int:
    """Parse an RFC3339 timestamp (any fractional precision) into epoch nanoseconds.

    Raises:
        TimeRangeError: not RFC3339, or a field out of range.
    """
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise TimeRangeError(f"invalid RFC3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise TimeRangeError(f"invalid date in timestamp: {text!r}")
    if hour > 23 or minute > 59 or second > 59:
        raise TimeRangeError(f"invalid time of day in timestamp: {text!r}")
    frac = int((m.group(7) or "").ljust(9, "0"))
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise TimeRangeError(f"invalid UTC offset in timestamp: {text!r}")
        offset = (oh * 3600 + om * 60) * (1 if m.group(9) == "+" else -1)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * NS + frac


def parse_time(text: str, now_ns: int) -> int:
    """Parse a query time (RFC3339, ``now`` or ``now-<N><s|m|h|d|w>``) into epoch nanoseconds.

    Args:
        text: the flag value.
        now_ns: the current time (one value per request, so start and end agree).

    Raises:
        TimeRangeError: bad syntax or a time after ``now_ns``.
    """
    value = text.strip()
    if value.startswith("now"):
        m = _RELATIVE.fullmatch(value)
        if m is None:
            if value.startswith("now+"):
                raise TimeRangeError(f"future times are not supported: {text!r}")
            raise TimeRangeError(
                f"invalid relative time: {text!r} (use now or now-<N><unit>, unit s, m, h, d or w, "
                "e.g. now-7d)"
            )
        if m.group(1) is None:
            return now_ns
        return now_ns - int(m.group(1)) * _UNITS[m.group(2)] * NS
    try:
        instant = parse_rfc3339(value)
    except TimeRangeError:
        raise TimeRangeError(
            f"invalid time format: {text!r} (use RFC3339 like 2024-01-01T00:00:00Z or relative "
            "like now-7d)"
        ) from None
    if instant > now_ns:
        raise TimeRangeError(f"time cannot be in the future: {text!r}")
    return instant


@dataclass(frozen=True)
class Window:
    """A resolved query window: ``start`` inclusive, ``end`` exclusive, epoch nanoseconds."""

    start: int
    end: int


def resolve_window(
    start: str, end: str, now_ns: int, max_window_ns: int = DEFAULT_MAX_WINDOW_NS
) -> Window:
    """Parse ``start``/``end`` and check ``start < end`` and the maximum window length.

    Raises:
        TimeRangeError: a bad time, an empty or reversed window, or a window that is too long.
    """
    s = parse_time(start, now_ns)
    e = parse_time(end, now_ns)
    if e <= s:
        raise TimeRangeError(f"end time must be after start time ({start!r} .. {end!r})")
    if e - s > max_window_ns:
        raise TimeRangeError(
            f"time range of {format_duration(e - s)} exceeds the maximum of "
            f"{format_duration(max_window_ns)}; reduce the time range or split the query"
        )
    return Window(s, e)


def format_duration(ns: int) -> str:
    """A duration for messages: ``30d``, ``2d3h``, ``1h0m5s``, ``0.25s``."""
    seconds, frac = divmod(ns, NS)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days and not (hours or minutes or secs or frac):
        return f"{days}d"
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if frac:
        parts.append(f"{minutes}m{secs + frac / NS:g}s")
    else:
        parts.append(f"{minutes}m{secs}s")
    return "".join(parts)


def format_rfc3339(ns: int, digits: int = 9) -> str:
    """Epoch nanoseconds as RFC3339 UTC with ``digits`` fractional digits (0 = none)."""
    seconds, frac = divmod(ns, NS)
    base = _strftime(seconds)
    if digits <= 0:
        return base + "Z"
    return f"{base}.{str(frac).zfill(9)[:digits]}Z"


def clickhouse_time(ns: int) -> str:
    """Epoch nanoseconds in the text form of a ``DateTime64(9, 'UTC')`` parameter."""
    seconds, frac = divmod(ns, NS)
    return _strftime(seconds).replace("T", " ") + f".{frac:09d}"


def _strftime(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
