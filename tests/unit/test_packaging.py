"""Packaging: a built package carries the bundled policies, and the loader finds that copy."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from processor.errors import ProcessorError
from processor.policy import bundled

REPO = Path(__file__).resolve().parents[2]


def test_build_py_copies_the_bundled_policies_into_the_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    source = sorted(p.relative_to(REPO) for p in (REPO / "policies").rglob("*.yaml"))
    copy = tmp_path / "processor" / "_bundled"
    assert source and sorted(p.relative_to(copy) for p in copy.rglob("*.yaml")) == source
    for rel in source:
        assert filecmp.cmp(REPO / rel, copy / rel, shallow=False), rel


def test_the_checkout_comes_first_then_the_installed_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bundled.bundled_policy_dir() == REPO / "policies"
    monkeypatch.setattr(bundled, "_ROOT", tmp_path / "no-checkout")
    monkeypatch.setattr(bundled, "_COPY", tmp_path / "_bundled")
    with pytest.raises(ProcessorError, match="bundled policies not found"):
        bundled.bundled_policy_dir()
    (tmp_path / "_bundled" / "policies").mkdir(parents=True)
    assert bundled.bundled_policy_dir() == tmp_path / "_bundled" / "policies"
