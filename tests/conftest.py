"""Shared pytest fixtures.

The real-policy corpus and the conformance cases live outside the repository, in ``../shared``
next to the repo root; tests read them from there at run time and never copy them in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Timing is never a test criterion (performance is measured by `activity bench`): no per-example
# deadline, so a slow first example (lazy parser construction, a loaded CI machine) cannot flake.
settings.register_profile("project", deadline=None)
settings.load_profile("project")

#: ``../shared`` relative to the repository root.
SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder (real policies, conformance cases); skips when it is absent."""
    if not SHARED_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared test data not found at {SHARED_DIR}; CI must provide it")
        pytest.skip(
            f"shared test data not found at {SHARED_DIR}: check out the shared corpus "
            "(real-policies/, conformance/) next to the repository to run this test"
        )
    return SHARED_DIR


@pytest.fixture(scope="session")
def real_policies_dir(shared_dir: Path) -> Path:
    """``../shared/real-policies``; skips when it is absent."""
    path = shared_dir / "real-policies"
    if not path.is_dir():
        pytest.skip(f"real-policy corpus not found at {path}")
    return path
