"""Readiness of a real worker (nats-server, in-memory sink): failing inserts, failing publishes and
inputs waiting past ``--ready-max-pending-age`` fail ``/readyz`` and recover; ``/healthz`` stays
ok throughout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor.sink.base import SinkError
from processor.sink.memory import MemorySink
from processor.worker.runner import Worker
from tests.integration import records
from tests.integration.fault_tools import http_get as get
from tests.integration.test_worker import wait_for, with_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def nats_url(fresh_nats_server: Any) -> str:
    """A server of this test only (a new consumer replays its stream from the start)."""
    return str(fresh_nats_server.url)


class BrokenSink(MemorySink):
    """A memory sink whose inserts fail while :attr:`broken` is set (like an unreachable server)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def insert(self, table: str, rows: Sequence[bytes], token: str) -> None:
        if self.broken:
            self.failures += 1
            raise SinkError("Connection refused (clickhouse:9000)", retriable=True)
        super().insert(table, rows, token)


class BrokenPublisher:
    """Wraps the pipeline's publisher; publishes fail while :attr:`broken` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.broken = True

    async def publish_all(self, items: Any) -> Any:
        if self.broken:
            raise TimeoutError("no PubAck for ACTIVITIES")
        return await self.inner.publish_all(items)


async def until(
    probe: Callable[[], Awaitable[tuple[int, bytes]]],
    accept: Callable[[tuple[int, bytes]], bool],
    timeout: float = 20.0,
) -> tuple[int, bytes]:
    """Poll ``probe`` until ``accept`` holds for its answer; the last answer is in the error."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await probe()
        if accept(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last answer {answer!r}")
        await asyncio.sleep(0.05)


def gauge(text: bytes) -> float:
    for line in text.splitlines():
        if line.startswith(b"activity_processor_oldest_pending_seconds "):
            return float(line.split()[1])
    raise AssertionError("activity_processor_oldest_pending_seconds not exported")


def test_readyz_reports_a_failing_sink_and_waiting_inputs_then_recovers(
    nats_url: str, policy_dir: Path
):
    sink = BrokenSink()

    async def body(worker: Worker, js: Any) -> None:
        port = worker.health.port
        assert await get(port, "/readyz") == (200, b"ok\n")
        await js.publish("audit.k8s.p0", orjson.dumps(records.audit("stuck", seq=1)))
        await wait_for(lambda: sink.failures >= 1, what="a failed insert")
        status, text = await get(port, "/readyz")
        assert status == 500
        assert (
            b"[-]sink failed: insert into activities failing: Connection refused (clickhouse:9000)"
        ) in text
        assert b"[+]nats ok" in text
        assert b"[+]publish ok" in text
        # the input waits for its insert: past the bound (1 s) the pending check fails too
        _, text = await until(lambda: get(port, "/readyz"), lambda a: b"[-]pending" in a[1])
        assert b"[-]pending failed: oldest unacknowledged input waited " in text
        assert b"s (bound 1s)\n" in text
        assert (await get(port, "/readyz/pending"))[0] == 500
        # liveness ignores the sink: restarting the pod would not bring ClickHouse back
        assert await get(port, "/healthz") == (200, b"ok\n")
        status, metrics = await get(port, "/metrics")
        assert status == 200
        assert gauge(metrics) > 1.0

        sink.broken = False
        await wait_for(lambda: worker.pipeline.committed_messages >= 1, what="the input acked")
        assert await until(lambda: get(port, "/readyz"), lambda a: a[0] == 200) == (200, b"ok\n")
        assert gauge((await get(port, "/metrics"))[1]) == 0.0

    asyncio.run(with_worker(nats_url, policy_dir, body, sink=sink, ready_max_pending_age=1.0))
    assert len(sink.rows("activities")) == 1


def test_readyz_reports_failing_publishes_then_recovers(nats_url: str, policy_dir: Path):
    async def body(worker: Worker, js: Any) -> None:
        port = worker.health.port
        transport = worker.pipeline.transport
        publisher = transport.publisher = BrokenPublisher(transport.publisher)
        await js.publish("audit.k8s.p1", orjson.dumps(records.audit("quiet", seq=1)))
        _, text = await until(lambda: get(port, "/readyz"), lambda a: a[0] == 500)
        assert b"[-]publish failed: publish failing: no PubAck for ACTIVITIES" in text
        assert b"[+]sink ok" in text
        assert b"[+]pending ok" in text  # the default bound, 120 s, is far away
        assert await get(port, "/healthz") == (200, b"ok\n")
        publisher.broken = False
        await wait_for(lambda: worker.pipeline.committed_messages >= 1, what="the input acked")
        assert await get(port, "/readyz") == (200, b"ok\n")

    sink = asyncio.run(with_worker(nats_url, policy_dir, body))
    assert len(sink.rows("activities")) == 1
