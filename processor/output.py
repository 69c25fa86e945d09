"""Printing objects for people (YAML, text) and programs (JSON)."""

from __future__ import annotations

from typing import Any

import orjson
import yaml


def dump(obj: Any, fmt: str) -> str:
    """Serialise ``obj`` as ``json`` (indented) or ``yaml`` (block style, key order kept)."""
    if fmt == "json":
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100)
    raise ValueError(f"unknown output format {fmt!r}")
