"""argparse ``type=`` functions: a bad count, size or log level is a usage error (exit 2).

argparse turns the :class:`argparse.ArgumentTypeError` these raise into
``activity <cmd>: error: argument --flag: must be >= 1: -5``, the same form as an unknown flag.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (a count or a size that cannot be zero)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (a count where 0 means none or no limit)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (a duration or a rate)."""
    value = _number(text)
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def fraction(text: str) -> float:
    """A number between 0 and 1 (a share)."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An integer from ``low`` to ``high`` (a page size)."""

    def between(text: str) -> int:
        value = _integer(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}: {value}")
        return value

    between.__name__ = f"int_between({low}, {high})"
    return between


#: The log levels commands accept (``setup_logging`` takes any of them, in any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level(text: str) -> str:
    """A log level name, in any case (returned in upper case)."""
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown log level {text!r}: use DEBUG, INFO, WARNING or ERROR"
        )
    return level
