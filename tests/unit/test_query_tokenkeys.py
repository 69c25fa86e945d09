"""Continue-token keys: sources and their order, rotation lists, the CLI's default key file."""

from __future__ import annotations

import argparse
import stat
import threading
from pathlib import Path

import pytest

from processor.commands.query import add_query_flags, token_keys
from processor.query.tables import ACTIVITIES
from processor.query.tokenkeys import (
    TokenKeyError,
    TokenKeys,
    ensure_key_file,
    load_keys,
    process_keys,
)

A = "a-key-0123456789abcdef"
B = "b-key-0123456789abcdef"


def test_env_list_first_signs_all_verify() -> None:
    keys = load_keys(None, {"ACTIVITY_TOKEN_KEYS": f" {A} , {B} "})
    assert keys.keys == (A.encode(), B.encode()) and keys.signing == A.encode()


def test_key_file_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-11-20\n{B}\n\n{A}\n")
    assert load_keys(str(path), {}).keys == (B.encode(), A.encode())
    assert load_keys(None, {"ACTIVITY_TOKEN_KEY_FILE": str(path)}).signing == B.encode()


def test_flag_beats_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(B)
    env = {"ACTIVITY_TOKEN_KEYS": A}
    assert load_keys(str(path), env, tmp_path / "default").signing == B.encode()
    assert load_keys(None, env, tmp_path / "default").signing == A.encode()
    assert not (tmp_path / "default").exists()


def test_invalid_configuration(tmp_path: Path) -> None:
    both = {"ACTIVITY_TOKEN_KEYS": A, "ACTIVITY_TOKEN_KEY_FILE": str(tmp_path / "k")}
    with pytest.raises(TokenKeyError, match="not both"):
        load_keys(None, both)
    with pytest.raises(TokenKeyError, match="key 2 is shorter than 16 bytes") as info:
        load_keys(None, {"ACTIVITY_TOKEN_KEYS": f"{A},short-secret"})
    assert "short-secret" not in str(info.value)  # a key is never printed
    with pytest.raises(TokenKeyError, match="no continue-token key"):
        load_keys(None, {"ACTIVITY_TOKEN_KEYS": " , "})
    with pytest.raises(TokenKeyError, match="cannot read"):
        load_keys(str(tmp_path / "missing"), {})
    assert A not in repr(TokenKeys((A.encode(),)))


def test_unconfigured_library_uses_one_random_key_per_process() -> None:
    assert load_keys(None, {}) is process_keys() is load_keys(None, {})
    assert len(process_keys().signing) == 32
    assert TokenKeys.generate().signing != TokenKeys.generate().signing


def test_default_file_created_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "state" / "token-keys"
    first = load_keys(None, {}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(None, {}, path) == first  # the next invocation reads the same key
    assert first != process_keys()
    assert [p.name for p in path.parent.iterdir()] == ["token-keys"]  # no temporary left


def test_default_file_concurrent_creation_agrees(tmp_path: Path) -> None:
    path = tmp_path / "token-keys"
    results: list[TokenKeys] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_key_file(path))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1


def test_cli_default_is_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ACTIVITY_TOKEN_KEYS", "ACTIVITY_TOKEN_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path))
    parser = argparse.ArgumentParser()
    add_query_flags(parser, ACTIVITIES)
    keys = token_keys(parser.parse_args([]))
    assert (tmp_path / "token-keys").is_file()
    assert keys == token_keys(parser.parse_args([]))
    other = tmp_path / "other"
    other.write_text(B)
    assert token_keys(parser.parse_args(["--token-key-file", str(other)])).signing == B.encode()
