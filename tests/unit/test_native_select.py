"""Selection of the implementation: environment switches, fatal when required, shown by version."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from processor.native import native, twin, use_native
from tests.unit.parity import BUNDLED, implementation


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_") or k in env}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environ, check=False
    )


VERSION = "from processor.cli import main; main(['version'])"


def test_no_extensions_forces_the_twin() -> None:
    result = run(
        VERSION + "; from processor.native import describe; print(describe())",
        PROCESSOR_NO_EXTENSIONS="1",
    )
    assert result.returncode == 0, result.stderr
    assert "implementation: python" in result.stdout
    assert "python (PROCESSOR_NO_EXTENSIONS=1)" in result.stdout


def test_default_is_native_when_built() -> None:
    implementation("native")
    result = run(VERSION)
    assert "implementation: native" in result.stdout, result.stderr


def test_a_missing_extension_is_fatal_when_required() -> None:
    code = (
        "import processor.native as n; n.EXTENSIONS = ('jsonscan', 'no_such_module');"
        "print(n.implementation())"
    )
    result = run(code, PROCESSOR_REQUIRE_EXTENSIONS="1")
    assert result.returncode != 0
    assert "ExtensionMissingError" in result.stderr
    assert "processor._native.no_such_module" in result.stderr
    # without the requirement, the twin is used and says why
    result = run(code.replace("print(n.implementation())", "print(n.describe())"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("python (extension missing: processor._native.no_such_module")


def test_engine_and_translator_follow_the_selection() -> None:
    from processor.engine import Engine
    from processor.translate import Translator

    assert Translator(Engine([], impl=twin())).implementation == "python"
    if use_native():
        assert Translator(Engine([])).implementation == "native"
        assert Translator(Engine([], impl=native())).implementation == "native"


def test_every_extension_is_compiled_code() -> None:
    """Every name in EXTENSIONS is loaded from a shared object, and the engine's units (builders,
    plans, templates) and the translator's (scanner, route, decoder) come from processor._native."""
    from importlib.machinery import ExtensionFileLoader

    from processor.engine import Engine
    from processor.native import EXTENSIONS, UNITS, require
    from processor.policy.compile import load_engine
    from processor.translate import Translator

    impl = implementation("native")
    for name in EXTENSIONS:
        module = require(name)
        assert isinstance(module.__loader__, ExtensionFileLoader), name
        assert module.__name__ == f"processor._native.{name}"
    for unit in UNITS:
        assert getattr(impl, unit) is require(unit)
    engine = load_engine([str(BUNDLED)], impl=impl)
    assert engine._build_audit.__module__ == "processor._native.activity"
    assert engine._build_event.__module__ == "processor._native.activity"
    crule = next(r for cp in engine.policies for r in cp.audit_rules if r.valid)
    assert type(crule.summary).__module__ == "processor._native.template"
    assert crule.match is not None and crule.match.implementation == "native"
    assert type(crule.match._plan).__module__ == "processor._native.plan"
    translator = Translator(engine)
    assert translator._scan is require("jsonscan")
    assert translator._split_routed.__module__ == "processor._native.route"
    assert translator._typed.__module__ == "processor._native.typed"
    assert Engine([]).impl is impl  # the active implementation, bound once


@pytest.mark.parametrize("env", [{"PROCESSOR_NO_EXTENSIONS": "1"}, {}])
def test_start_log_line(env: dict[str, str]) -> None:
    code = (
        "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s');"
        "from processor.native import log_implementation; log_implementation()"
    )
    result = run(code, **env)
    assert result.stderr.startswith("per-record implementation: "), result.stderr
