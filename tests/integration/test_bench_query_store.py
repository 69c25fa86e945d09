"""``activity bench --query`` leaves no store behind unsaid: it says where the data stays, or
removes it with ``--clean`` (a 10M-row store holds ~4 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.cli import main

pytestmark = pytest.mark.integration


def test_the_store_is_named_then_removed_with_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path))
    store = tmp_path / "bench-query"
    args = ["bench", "--query", "--rows", "300", "--repeat", "1", "--dedup", "none"]
    assert main(args) == 0
    assert store.is_dir()
    assert f"remove it with `rm -rf {store}`" in capsys.readouterr().err
    assert main([*args, "--clean"]) == 0
    assert not store.exists()
    assert f"removed the benchmark store {store}" in capsys.readouterr().err
