"""Time syntax of the query commands: RFC3339 at any precision, now-N<unit>, strictness."""

from __future__ import annotations

import pytest

from processor.query.errors import TimeRangeError
from processor.query.timeparse import (
    NS,
    clickhouse_time,
    duration_ns,
    format_duration,
    format_rfc3339,
    parse_rfc3339,
    parse_time,
    resolve_window,
)

NOW = parse_rfc3339("2026-11-20T10:00:00Z")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T10:00:00Z", NOW),
        ("2026-11-20T10:00:00z", NOW),
        ("2026-11-20t10:00:00Z", NOW),
        ("2026-11-20T11:30:00+01:30", NOW),
        ("2026-11-20T09:00:00-01:00", NOW),
        ("2026-11-20T09:59:59.5Z", NOW - NS // 2),
        ("2026-11-20T09:59:59.123456789Z", NOW - NS + 123456789),
        ("2026-11-20T09:59:59.000000001Z", NOW - NS + 1),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T00:00:00Z", parse_rfc3339("2024-03-01T00:00:00Z") - 86400 * NS),
    ],
)
def test_rfc3339_any_precision(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("now", 0),
        ("now-0s", 0),
        ("now-30s", 30),
        ("now-15m", 900),
        ("now-2h", 7200),
        ("now-7d", 7 * 86400),
        ("now-2w", 14 * 86400),
        (" now-1h ", 3600),
    ],
)
def test_relative(text: str, seconds: int) -> None:
    assert parse_time(text, NOW) == NOW - seconds * NS


@pytest.mark.parametrize(
    "text",
    [
        "now-1.5h",  # upstream reads 1h
        "now-7dd",  # upstream reads 7d
        "now-",
        "now-d",
        "now--7d",
        "now-7",
        "now-7y",
        "now-7D",
        "nowish",
        "now+1h",
        "yesterday",
        "",
        "2026-11-20",
        "2026-11-20 10:00:00Z",
        "2026-11-20T10:00:00",  # no offset
        "2026-11-20T10:00Z",
        "2026-11-20T10:00:00.Z",
        "2026-11-20T10:00:00.1234567890Z",  # 10 digits
        "2026-02-30T10:00:00Z",
        "2026-13-01T10:00:00Z",
        "2026-11-20T24:00:00Z",
        "2026-11-20T10:60:00Z",
        "2026-11-20T10:00:60Z",
        "2026-11-20T10:00:00+24:00",
        "1234567890",
    ],
)
def test_rejected(text: str) -> None:
    with pytest.raises(TimeRangeError):
        parse_time(text, NOW)


def test_future_rejected_even_by_a_nanosecond() -> None:
    assert parse_time("2026-11-20T10:00:00.000000000Z", NOW) == NOW
    with pytest.raises(TimeRangeError, match="future"):
        parse_time("2026-11-20T10:00:00.000000001Z", NOW)
    with pytest.raises(TimeRangeError, match="future"):
        parse_time("now+1h", NOW)


def test_window_rules() -> None:
    w = resolve_window("now-30d", "now", NOW)
    assert (w.start, w.end) == (NOW - 30 * 86400 * NS, NOW)
    with pytest.raises(TimeRangeError, match="exceeds the maximum of 30d"):
        resolve_window("2026-10-21T09:59:59.999999999Z", "now", NOW)
    with pytest.raises(TimeRangeError, match="time range of 31d exceeds the maximum of 30d"):
        resolve_window("now-31d", "now", NOW)
    with pytest.raises(TimeRangeError, match="after start"):
        resolve_window("now", "now", NOW)
    with pytest.raises(TimeRangeError, match="after start"):
        resolve_window("now-1h", "now-2h", NOW)
    assert resolve_window("now-2h", "now-1h", NOW, 3600 * NS).end == NOW - 3600 * NS


def test_formatting() -> None:
    ns = parse_rfc3339("2026-11-20T10:00:00.123456789Z")
    assert format_rfc3339(ns) == "2026-11-20T10:00:00.123456789Z"
    assert format_rfc3339(ns, 3) == "2026-11-20T10:00:00.123Z"
    assert format_rfc3339(ns, 0) == "2026-11-20T10:00:00Z"
    assert clickhouse_time(ns) == "2026-11-20 10:00:00.123456789"
    assert format_duration(30 * 86400 * NS) == "30d"
    assert format_duration(3723 * NS) == "1h2m3s"
    assert format_duration(NS // 4) == "0m0.25s"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", 30 * 86400 * NS), ("1h", 3600 * NS), ("90m", 5400 * NS), ("2w", 14 * 86400 * NS),
     ("0s", 0), ("", 0), ("1.5h", 0), ("-1h", 0), ("7dd", 0), ("h", 0), ("10y", 0)],
)  # fmt: skip
def test_duration_ns(text: str, expected: int) -> None:
    assert duration_ns(text) == expected
