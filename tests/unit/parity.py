"""Run tests on both implementations: the pure-Python twins and the Cython extensions.

``IMPLEMENTATIONS`` parametrises a test; :func:`native_flag` turns the parameter into the
``native=`` argument of :class:`processor.engine.Engine` / :class:`processor.translate.Translator`,
skipping the native run when the extensions are not built (failing instead when
``PROCESSOR_REQUIRE_EXTENSIONS=1``, as CI sets, so a missing ``.so`` cannot hide). With
``PROCESSOR_NO_EXTENSIONS=1`` only the twin runs. ``both_plans`` (autouse where imported) runs every
test of a module with each CEL plan compiler.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from processor.cel import program
from processor.native import extension, use_native

IMPLEMENTATIONS = ["python", "native"]


def native_flag(impl: str) -> bool:
    """``impl`` (``python``/``native``) as a ``native=`` flag; skip native when unavailable."""
    if impl == "python":
        return False
    if os.environ.get("PROCESSOR_NO_EXTENSIONS") == "1":
        pytest.skip("PROCESSOR_NO_EXTENSIONS=1: the twin only")
    if not use_native() or extension("plan") is None:
        if os.environ.get("PROCESSOR_REQUIRE_EXTENSIONS") == "1":
            pytest.fail("native extensions required but not built")
        pytest.skip("native extensions not built (pip install -e . builds them)")
    return True


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> str:
    """``python`` or ``native``, skipped as :func:`native_flag` says."""
    native_flag(request.param)
    return str(request.param)


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def both_plans(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Compile CEL plans with the twin (``python``) or its Cython build (``native``)."""
    if native_flag(request.param):
        plan = extension("plan")
        assert plan is not None
        monkeypatch.setattr(program, "compile_plan", plan.compile_plan)
    monkeypatch.setattr(program, "_CACHE", {})
    yield str(request.param)
