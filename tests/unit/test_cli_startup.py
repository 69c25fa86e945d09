"""``activity --help`` and ``activity version`` start fast: building the parser imports no heavy
module (the stream client, chDB, the CEL parser, the engine, the query service, the worker, YAML,
asyncio, tqdm). Each command imports those in its handler. Start-up time itself is measured, not
asserted (see the STYLE notes on benchmarks); this test keeps the imports that made it slow out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Modules building the parser must not import (each cost tens of milliseconds at start-up).
HEAVY = (
    "nats",
    "aiohttp",
    "chdb",
    "celpy",
    "lark",
    "processor.engine",
    "processor.query.service",
    "processor.worker",
    "yaml",
    "asyncio",
    "tqdm",
)


def imported_after(code: str) -> list[str]:
    """The modules of :data:`HEAVY` that ``code`` leaves imported, in a fresh interpreter."""
    check = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules or "
        "any(k.startswith(m + '.') for k in sys.modules))))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    found: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def test_building_the_parser_imports_no_heavy_module() -> None:
    assert imported_after("from processor.cli import build_parser; build_parser()") == []


@pytest.mark.parametrize(
    "argv", [["--help"], ["version"], ["query", "--help"], ["ingest", "--help"]]
)
def test_help_and_version_import_no_heavy_module(argv: list[str]) -> None:
    code = f"from processor.cli import main; main({argv!r})"
    assert imported_after(code) == []


def test_copied_constants_match_their_modules() -> None:
    """The commands' copies of constants they do not import (the parser is built without)."""
    from processor import translate as translator
    from processor.commands import history, query, translate
    from processor.commands.flags import OUTPUT_FORMATS
    from processor.query import history as query_history
    from processor.query import output, service

    assert (query.DEFAULT_LIMIT, query.MAX_LIMIT) == (service.DEFAULT_LIMIT, service.MAX_LIMIT)
    assert history.MAX_CHANGES == query_history.MAX_CHANGES
    assert translate.DEFAULT_MAX_RECORD_BYTES == translator.DEFAULT_MAX_RECORD_BYTES
    assert output.FORMATS == OUTPUT_FORMATS
