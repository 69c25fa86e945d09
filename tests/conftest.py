"""Shared pytest fixtures: the shared corpus, and the hypothesis profiles.

The real-policy corpus and the conformance cases live outside the repository, in ``../shared``
next to the repo root (``PROCESSOR_SHARED_DIR`` points elsewhere); tests read them from there at
run time and never copy them in. A user's clone has no ``../shared``: the tests that read it skip
with the reason. With ``PROCESSOR_REQUIRE_SHARED=1`` (set by ``.ci/run``) a missing folder fails
them instead, so CI cannot pass without the corpus.

Hypothesis: the ``project`` profile (no deadline) by default; ``ci`` (derandomized, no example
database, failure blobs printed) with ``HYPOTHESIS_PROFILE=ci`` or ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Timing is never a test criterion (performance is measured by `activity bench`): no per-example
# deadline, so a slow first example (lazy parser construction, a loaded CI machine) cannot flake.
settings.register_profile("project", deadline=None)
# CI: the same examples on every run (a failure reproduces from the log: print_blob), and no
# example database to read or write on a fresh machine.
settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)


def _hypothesis_profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE", "")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").lower() in ("true", "1") else "project"


settings.load_profile(_hypothesis_profile())

#: The repository root.
REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    override = os.environ.get("PROCESSOR_SHARED_DIR", "")
    return Path(override).resolve() if override else REPO_ROOT.parent / "shared"


#: ``../shared`` relative to the repository root, or ``$PROCESSOR_SHARED_DIR``.
SHARED_DIR = _shared_dir()


def shared_required() -> bool:
    """Whether a missing shared corpus fails (``PROCESSOR_REQUIRE_SHARED=1``) rather than skips."""
    return os.environ.get("PROCESSOR_REQUIRE_SHARED", "") not in ("", "0")


def missing_shared(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when the shared corpus is required."""
    if shared_required():
        pytest.fail(f"{reason} (PROCESSOR_REQUIRE_SHARED=1: CI must provide it)", pytrace=False)
    pytest.skip(
        f"{reason}: check out the shared corpus (real-policies/, conformance/) next to the "
        "repository, or set PROCESSOR_SHARED_DIR"
    )


def require_shared(*parts: str) -> Path:
    """The folder ``SHARED_DIR/parts``; skips (or fails, see :func:`missing_shared`) if absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.is_dir():
        missing_shared(f"shared test data not found at {path}")
    return path


def shared_files(
    *parts: str,
    recursive: bool = False,
    ids: Callable[[Path], str] | None = None,
) -> list[Any]:
    """The ``*.yaml`` files of ``SHARED_DIR/parts`` as ``pytest.param`` s, for ``parametrize``.

    When the folder is absent or holds no file, one placeholder parameter (``None``) carries the
    ``shared_missing`` mark: the test skips, or fails under ``PROCESSOR_REQUIRE_SHARED=1``, before
    it runs (an empty parameter list would only ever skip). ``ids`` names a file (default: its
    path below ``SHARED_DIR/parts[0]``).
    """
    folder = SHARED_DIR.joinpath(*parts)
    files = []
    if folder.is_dir():
        files = sorted(folder.rglob("*.yaml") if recursive else folder.glob("*.yaml"))
    if not files:
        state = "has no *.yaml files" if folder.is_dir() else "not found"
        reason = f"shared test data {state} at {folder}"
        return [pytest.param(None, id="shared-missing", marks=pytest.mark.shared_missing(reason))]
    base = SHARED_DIR / parts[0] if parts else SHARED_DIR
    name = ids or (lambda path: str(path.relative_to(base)))
    return [pytest.param(path, id=name(path)) for path in files]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared_missing(reason): the shared corpus this test reads is absent (skip; fail with "
        "PROCESSOR_REQUIRE_SHARED=1)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("shared_missing"):
        missing_shared(mark.args[0])


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder (real policies, conformance cases)."""
    return require_shared()


@pytest.fixture(scope="session")
def real_policies_dir(shared_dir: Path) -> Path:
    """``../shared/real-policies``."""
    return require_shared("real-policies")


@pytest.fixture(scope="session")
def conformance_cases_dir(shared_dir: Path) -> Path:
    """``../shared/conformance/cases``."""
    return require_shared("conformance", "cases")
