"""Flags every command spells the same way, kubectl's: ``-o/--output`` and ``-f/--filename``.

``-o FORMAT`` picks how a command prints objects: ``table`` (the default, for people), ``wide``
(the table with more columns where there are more to show), ``json`` and ``yaml`` (for programs).
``-f PATH`` names a file (or directory) of resources, such as ActivityPolicy files.

This module is imported when the parser is built, so it imports nothing beyond ``argparse``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

#: The ``-o`` choices of every command that prints objects.
OUTPUT_FORMATS: tuple[str, ...] = ("table", "wide", "json", "yaml")


def add_output(
    parser: argparse.ArgumentParser,
    *,
    extra: Sequence[str] = (),
    default: str = "table",
    detail: str = "",
) -> None:
    """Add ``-o/--output {table,wide,json,yaml}`` (plus ``extra`` choices), default ``table``.

    Args:
        parser: the command's parser.
        extra: further accepted spellings (aliases kept for compatibility).
        default: the format used when ``-o`` is not given.
        detail: what the formats print for this command, appended to the help.
    """
    what = detail or "table for people, wide with more columns, json or yaml for programs"
    parser.add_argument(
        "-o",
        "--output",
        choices=(*OUTPUT_FORMATS, *extra),
        default=default,
        help=f"output format (default: {default}): {what}",
    )


def add_filename(
    parser: argparse.ArgumentParser,
    *aliases: str,
    help: str,
    dest: str = "filename",
    **kwargs: Any,
) -> None:
    """Add ``-f/--filename`` for files of resources, with older spellings (``aliases``) kept.

    Args:
        parser: the command's parser.
        aliases: former option strings that keep working (``--policies``).
        help: what the files are.
        dest: the attribute the value is stored in.
        kwargs: further :meth:`argparse.ArgumentParser.add_argument` keywords (``nargs``...).
    """
    shown = f" ({', '.join(aliases)} is the same option)" if aliases else ""
    kwargs.setdefault("metavar", "PATH")
    parser.add_argument("-f", "--filename", *aliases, dest=dest, help=help + shown, **kwargs)
