"""Keyset pagination over 10k activities with many equal timestamps, while rows are inserted.

Every stored row must come back exactly once across pages although, between page fetches,
another thread inserts new activities (newer and older than the cursor) and redelivers copies of
already stored ones under new insert tokens.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from processor.query.service import QueryRequest, run_query
from processor.query.tables import ACTIVITIES
from processor.query.timeparse import NS, format_rfc3339
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
