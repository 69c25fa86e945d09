"""Keyset pagination on chDB: 10k rows with equal timestamps and concurrent inserts; signed tokens.

Every stored row must come back exactly once across pages although, between page fetches,
another thread inserts new activities (newer and older than the cursor) and redelivers copies of
already stored ones under new insert tokens.

Continue tokens are signed: altered, foreign-key and over-limit tokens are refused before any
query reaches the store, a key rotation keeps a paging session going, and the CLI's token works
in the next process (the key file in the data directory).
"""

from __future__ import annotations

import base64
import os
import random
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor.query.cursor import Cursor, encode, key_of
from processor.query.errors import CursorError
from processor.query.service import QueryRequest, run_query
from processor.query.tables import ACTIVITIES
from processor.query.timeparse import NS, format_rfc3339
from processor.query.tokenkeys import TokenKeys
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate

pytestmark = pytest.mark.integration

ROWS = 10_000
BASE = time.time_ns() // NS * NS - 3600 * NS  # an hour ago, whole second


def activity(i: int, second: int, tenant: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "activity.miloapis.com/v1alpha1",
            "kind": "Activity",
            "metadata": {
                "name": f"act-{i}",
                "creationTimestamp": format_rfc3339(BASE - second * NS, 0),
            },
            "spec": {
                "summary": f"row {i}",
                "tenant": {"type": "Organization", "name": tenant},
                "actor": {"name": "alice"},
                "resource": {"kind": "Pod", "name": f"p-{i}"},
                "origin": {"type": "audit", "id": f"o-{i:06d}"},
            },
        }
    )


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[ChdbSink]:
    s = ChdbSink(tmp_path / "chdb")
    try:
        migrate(s)
        s.open()
        yield s
    finally:
        s.close()


def _load(sink: ChdbSink, rng: random.Random) -> list[bytes]:
    # 10k rows on only 40 distinct whole seconds, 3 tenants: long runs of equal timestamps
    rows = [activity(i, rng.randrange(40), rng.choice(["a", "b", "c"])) for i in range(ROWS)]
    for start in range(0, ROWS, 2500):
        sink.insert("activities", rows[start : start + 2500], f"load-{start}")
    return rows


def test_each_row_exactly_once_with_concurrent_inserts(sink: ChdbSink) -> None:
    rng = random.Random(6)
    rows = _load(sink, rng)
    stop = threading.Event()
    inserted: list[int] = []

    def writer() -> None:
        n = ROWS
        batch = 0
        while not stop.is_set():
            fresh = [activity(n + k, rng.randrange(-30, 60), "b") for k in range(20)]
            redelivered = rng.sample(rows, 50)
            sink.insert("activities", fresh, f"fresh-{batch}")
            sink.insert("activities", redelivered, f"again-{batch}")
            inserted.extend(range(n, n + 20))
            n += 20
            batch += 1
            time.sleep(0.005)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[str] = []
    request = QueryRequest(ACTIVITIES, start="now-2h", limit=250)
    try:
        while True:
            page = run_query(sink, request)
            seen += [a["spec"]["origin"]["id"] for a in page.items]
            if not page.continue_token:
                break
            request = QueryRequest(ACTIVITIES, start="now-2h", limit=250,
                                   continue_token=page.continue_token)  # fmt: skip
    finally:
        stop.set()
        thread.join()
    assert inserted, "the writer inserted nothing while pages were read"
    assert len(seen) == len(set(seen)), "a row was returned twice"
    original = {f"o-{i:06d}" for i in range(ROWS)}
    assert original <= set(seen), f"{len(original - set(seen))} stored rows were skipped"
    extra = set(seen) - original
    assert extra <= {f"o-{i:06d}" for i in inserted}


# --- signed continue tokens ---------------------------------------------------------------------

OLD_KEY = "old-key-0123456789abcdef"
NEW_KEY = "new-key-0123456789abcdef"


class CountingBackend:
    """The sink, counting the queries that reach it."""

    def __init__(self, sink: ChdbSink) -> None:
        self.sink, self.database, self.queries = sink, sink.database, 0

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.queries += 1
        return self.sink.query(sql, params)


def _small_load(sink: ChdbSink, rows: int = 30) -> set[str]:
    rng = random.Random(3)
    sink.insert("activities", [activity(i, rng.randrange(40), "a") for i in range(rows)], "small")
    return {f"o-{i:06d}" for i in range(rows)}


def test_signed_pages_with_key_rotation_end_to_end(sink: ChdbSink) -> None:
    expected = _small_load(sink)
    old = TokenKeys((OLD_KEY.encode(),))
    rotated = TokenKeys((NEW_KEY.encode(), OLD_KEY.encode()))
    request = QueryRequest(ACTIVITIES, start="now-2h", limit=7)
    page = run_query(sink, request, keys=old)
    seen = [a["spec"]["origin"]["id"] for a in page.items]
    # rotation: the next process knows the new key first; the old key's token still works
    request = replace(request, continue_token=page.continue_token)
    page = run_query(sink, request, keys=rotated)
    seen += [a["spec"]["origin"]["id"] for a in page.items]
    with pytest.raises(CursorError, match="signature mismatch"):  # signed with the new key
        run_query(sink, replace(request, continue_token=page.continue_token), keys=old)
    new_only = TokenKeys((NEW_KEY.encode(),))  # the old key dropped after the TTL
    while page.continue_token:
        request = replace(request, continue_token=page.continue_token)
        page = run_query(sink, request, keys=new_only)
        seen += [a["spec"]["origin"]["id"] for a in page.items]
    assert len(seen) == len(set(seen)) and set(seen) == expected


def _tampered(token: str, **changes: object) -> str:
    payload, mac = token.split(".")
    doc = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(orjson.dumps({**doc, **changes})).decode().rstrip("=")
    return f"{forged}.{mac}"


def test_tampered_or_oversized_tokens_reach_no_query(sink: ChdbSink) -> None:
    _small_load(sink)
    keys = TokenKeys((OLD_KEY.encode(),))
    backend = CountingBackend(sink)
    request = QueryRequest(ACTIVITIES, start="now-2h", limit=7)
    first = run_query(backend, request, keys=keys)
    assert backend.queries == 1 and first.continue_token
    nxt = replace(request, continue_token=first.continue_token)
    assert run_query(backend, nxt, keys=keys).items  # the untouched token works
    backend.queries = 0
    rejected = {
        _tampered(first.continue_token, w=[0, 2**62]): "signature mismatch",
        _tampered(first.continue_token, k=[BASE, "Organization", "a", "o-999999"]): "mismatch",
        first.continue_token: "signature mismatch",  # checked with another key below
    }
    for token, message in rejected.items():
        use = keys if token != first.continue_token else TokenKeys((NEW_KEY.encode(),))
        with pytest.raises(CursorError, match=message):
            run_query(backend, replace(request, continue_token=token), keys=use)
    # a validly signed token whose window exceeds the limit (a key leak, an old bug)
    wide = Cursor(key_of({"k0": BASE, "k1": "", "k2": "", "k3": ""}, 4), 0, time.time_ns())
    signed = encode(wide, request.binding(), time.time_ns() // 10**6, keys)
    with pytest.raises(CursorError, match="exceeds the maximum of 30d"):
        run_query(backend, replace(request, continue_token=signed), keys=keys)
    assert backend.queries == 0


def _cli(data_dir: Path, url: str, *args: str, keys: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACTIVITY_TOKEN_KEY")}
    env["ACTIVITY_DATA_DIR"] = str(data_dir)
    if keys:
        env["ACTIVITY_TOKEN_KEYS"] = keys
    argv = [sys.executable, "-m", "processor", "query", "--start", "now-2h", "--limit", "7"]
    return subprocess.run(
        [*argv, "--clickhouse-url", url, "-o", "json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _next_token(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stderr.split("--continue '")[1].split("'")[0]


def test_cli_token_across_processes(tmp_path: Path) -> None:
    store = ChdbSink(tmp_path / "chdb")
    try:
        migrate(store)
        store.open()
        _small_load(store)
    finally:
        store.close()  # chDB opens a directory in one process at a time
    url, data_dir = f"chdb://{tmp_path / 'chdb'}", tmp_path / "data"
    token = _next_token(_cli(data_dir, url))  # no key configured: <data dir>/token-keys
    second = _cli(data_dir, url, "--continue", token)
    assert second.returncode == 0, second.stderr
    assert len(orjson.loads(second.stdout)["items"]) == 7
    assert stat.S_IMODE((data_dir / "token-keys").stat().st_mode) == 0o600
    token = _next_token(_cli(data_dir, url, keys=OLD_KEY))
    refused = _cli(data_dir, url, "--continue", token, keys=NEW_KEY)
    assert refused.returncode == 1
    assert "error: the continue token is not valid: signature mismatch" in refused.stderr
    rotated = _cli(data_dir, url, "--continue", token, keys=f"{NEW_KEY},{OLD_KEY}")
    assert rotated.returncode == 0, rotated.stderr
