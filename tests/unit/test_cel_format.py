"""Go-compatible rendering: ``%v`` of CEL results, ``strconv.Quote``
(docs/design.md#policy-engine-3-2, #policy-engine-3-3)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processor.cel import go_format, go_quote
from processor.cel.format import go_duration, go_float
from processor.cel.values import TypeValue, UInt


@pytest.mark.parametrize(
    "value, expected",
    [
        # the table of docs/design.md#policy-engine-3-3
        (201.0, "201"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (1e6, "1e+06"),
        (0.5, "0.5"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (201.5, "201.5"),
        # more of Go's shortest 'g' layout: exponent when < -4 or >= 6 (not 21 as in JS)
        (999999.0, "999999"),
        (999999.5, "999999.5"),
        (100000.0, "100000"),
        (1e20, "1e+20"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (123456789.0, "1.23456789e+08"),
        (12345.678, "12345.678"),
        (0.000123, "0.000123"),
        (2.5e-5, "2.5e-05"),
        (1.5e-10, "1.5e-10"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (-1234567.0, "-1.234567e+06"),
        (-0.5, "-0.5"),
        (-201.0, "-201"),
        (0.0, "0"),
        (-0.0, "-0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_go_float(value: float, expected: str) -> None:
    assert go_float(value) == expected
    assert go_format(value) == expected


def test_go_float_round_trips() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = rng.choice([rng.uniform(-1e9, 1e9), rng.random() * 10 ** rng.randint(-30, 30)])
        text = go_float(value)
        assert float(text) == value, text
        mantissa, _, exponent = text.lstrip("-").partition("e")
        if exponent:  # exponent form: one digit before the point, signed two-digit exponent
            assert exponent[0] in "+-" and len(exponent) >= 3
            assert len(mantissa.split(".")[0]) == 1
            assert not -4 <= int(exponent) < 6
        else:
            assert "e" not in text


@pytest.mark.parametrize(
    "value, expected",
    [
        ("text", "text"),
        ("", ""),
        (True, "true"),
        (False, "false"),
        (17, "17"),  # an int, e.g. from size() inside a dyn ternary
        (-3, "-3"),
        (UInt(42), "42"),
        (None, "NULL_VALUE"),  # the protobuf enum name
        (["a", "b"], "[a b]"),
        ([], "[]"),
        ([1.0, 2.5, 1234567.0], "[1 2.5 1.234567e+06]"),
        (["a", None, True], "[a <nil> true]"),  # a JSON null inside input data is Go's nil
        ([["a"], {"k": "v"}], "[[a] map[k:v]]"),
        ({"k2": "v2", "k1": "v1"}, "map[k1:v1 k2:v2]"),  # keys sorted
        ({}, "map[]"),
        ({"b": {"d": 1.0, "c": None}, "a": [1.0]}, "map[a:[1] b:map[c:<nil> d:1]]"),
        ({"B": 1.0, "a": 2.0, "_": 3.0}, "map[B:1 _:3 a:2]"),  # byte order
        (b"ab", "[97 98]"),
        (TypeValue("string"), "string"),
        (datetime(2024, 1, 15, 10, 30, tzinfo=UTC), "2024-01-15 10:30:00 +0000 UTC"),
        (datetime(2024, 1, 15, 10, 30, 0, 500000, tzinfo=UTC), "2024-01-15 10:30:00.5 +0000 UTC"),
        (timedelta(hours=1, minutes=30), "1h30m0s"),
    ],
)
def test_go_format(value: Any, expected: str) -> None:
    assert go_format(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=2), "2h0m0s"),
        (timedelta(hours=25, seconds=1), "25h0m1s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=5), "5µs"),
        (timedelta(seconds=-90), "-1m30s"),
    ],
)
def test_go_duration(value: timedelta, expected: str) -> None:
    assert go_duration(value) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("audit.x", '"audit.x"'),
        ('audit["x"]', '"audit[\\"x\\"]"'),
        ("a\\b", '"a\\\\b"'),
        ("line\nnext\ttab\r", '"line\\nnext\\ttab\\r"'),
        ("\a\b\f\v", '"\\a\\b\\f\\v"'),
        ("\x00\x1f\x7f", '"\\x00\\x1f\\x7f"'),
        ("héllo 日本", '"héllo 日本"'),  # printable runes stay as they are
        ("\u200b\u00a0", '"\\u200b\\u00a0"'),  # non-printable runes are escaped
        ("\U000e0001", '"\\U000e0001"'),
        ("it's", '"it\'s"'),
        ("", '""'),
    ],
)
def test_go_quote(text: str, expected: str) -> None:
    assert go_quote(text) == expected
