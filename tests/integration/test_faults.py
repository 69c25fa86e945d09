"""Faults with real processes: kill -9 of a worker, SIGTERM, a nats-server restart mid-stream.

Every test ends with the same check: each input record shows exactly once in query results
(``SELECT ... FINAL`` over chDB), whatever was redelivered on the way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest

from processor.config import Settings
from processor.sink.factory import open_sink
from processor.sink.migrate import migrate
from processor.stream.server import NatsServer
from processor.stream.topology import ensure_streams
from processor.worker.runner import Worker
from tests.integration import records
from tests.integration.nats_server import tolerates_reconnect_leak

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PARTITIONS = 4
COUNT_SQL = "SELECT count() AS n, uniqExact(origin_id) AS u FROM audit.activities FINAL"


def workload(count: int) -> list[tuple[str, bytes]]:
    """Half the records as EventLists of 50, half as single messages, over all partitions."""
    recs = [records.audit(f"app-{i}", seq=i) for i in range(count)]
    half = count // 2
    messages = [
        (f"audit.k8s.p{(i // 50) % PARTITIONS}", records.event_list(recs[i : i + 50]))
        for i in range(0, half, 50)
    ]
    messages += [(records.audit_subject(r, PARTITIONS), orjson.dumps(r)) for r in recs[half:]]
    return messages


async def publish(url: str, messages: list[tuple[str, bytes]], first_id: int = 0) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js)
    for i, (subject, payload) in enumerate(messages, first_id):
        for _ in range(100):
            try:
                await js.publish(subject, payload, headers={"Nats-Msg-Id": f"m-{i}"})
                break
            except Exception:
                await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"could not publish message {i}")
    await nc.drain()


async def stream_count(url: str, stream: str) -> int:
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.drain()


async def drained(url: str) -> bool:
    """True when no consumer of the input streams has pending or unacked messages."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for stream in ("AUDIT_EVENTS", "EVENTS"):
            for info in await js.consumers_info(stream):
                if info.num_pending or info.num_ack_pending:
                    return False
        return True
    finally:
        await nc.drain()


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not asyncio.run(check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.2)


def start_worker(url: str, chdb: Path, policies: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "processor", "run",
        "--nats-url", url, "--clickhouse-url", f"chdb://{chdb}", "--migrate", "true",
        "--policies", str(policies), "--policy-bucket", "", "--health-addr", "",
        "--partition-count", str(PARTITIONS), "--batch-max-age", "0.2", "--ack-wait", "2",
    ]  # fmt: skip
    with open(log, "ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)


def stored(chdb: Path) -> dict[str, Any]:
    sink = open_sink(f"chdb://{chdb}")
    sink.open()
    try:
        return sink.query(COUNT_SQL)[0]
    finally:
        sink.close()


def test_kill_9_and_restart_gives_exactly_one_activity_per_input(
    fresh_nats_server: NatsServer, policy_dir: Path, tmp_path: Path
):
    url = fresh_nats_server.url
    messages = workload(10_000)  # long enough that the kill lands in the middle of it
    asyncio.run(publish(url, messages))
    chdb, log = tmp_path / "chdb", tmp_path / "worker.log"
    worker = start_worker(url, chdb, policy_dir, log)
    try:
        wait_until(
            lambda: _at_least(url, "ACTIVITIES", 300), 120, "the first activities were published"
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
    assert worker.returncode == -signal.SIGKILL
    assert not asyncio.run(drained(url)), "the worker finished before the kill: nothing to test"
    worker = start_worker(url, chdb, policy_dir, log)
    try:
        wait_until(lambda: _started(log, 2), 60, "the second worker started")
        wait_until(lambda: drained(url), 180, "every input acknowledged after the restart")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    assert stored(chdb) == {"n": 10_000, "u": 10_000}
    assert asyncio.run(stream_count(url, "ACTIVITIES")) == 10_000


async def _started(log: Path, workers: int) -> bool:
    """Whether ``workers`` workers logged their start (their SIGTERM handlers are installed)."""
    return log.read_text().count("policies (initial)") >= workers


async def _at_least(url: str, stream: str, count: int) -> bool:
    return await stream_count(url, stream) >= count


def test_sigterm_flushes_and_acks_before_exit(
    fresh_nats_server: NatsServer, policy_dir: Path, tmp_path: Path
):
    url = fresh_nats_server.url
    chdb, log = tmp_path / "chdb", tmp_path / "worker.log"
    worker = start_worker(url, chdb, policy_dir, log)
    try:
        asyncio.run(publish(url, workload(400)))
        wait_until(lambda: _at_least(url, "ACTIVITIES", 400), 120, "all activities published")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    # the acks left before the exit; nats-server applies them on its own goroutine, so allow it a
    # moment (an unacked input would stay pending far longer: nothing is there to redeliver to)
    wait_until(lambda: drained(url), 3, "every input acknowledged before the exit")
    assert stored(chdb) == {"n": 400, "u": 400}


@tolerates_reconnect_leak
def test_nats_server_restart_mid_stream(
    fresh_nats_server: NatsServer, policy_dir: Path, tmp_path: Path
):
    chdb = tmp_path / "chdb"
    messages = workload(1200)

    async def main() -> None:
        sink = open_sink(f"chdb://{chdb}")
        migrate(sink)
        settings = Settings(
            nats_url=fresh_nats_server.url, partition_count=PARTITIONS, batch_max_age=0.1,
            health_addr="", policy_bucket="", ack_wait=2.0,
        )  # fmt: skip
        worker = Worker(settings, [str(policy_dir)], sink=sink)
        await worker.start()
        try:
            first = asyncio.ensure_future(
                publish(fresh_nats_server.url, messages[: len(messages) // 2])
            )
            await first
            await asyncio.to_thread(fresh_nats_server.restart)
            half = len(messages) // 2
            await publish(fresh_nats_server.url, messages[half:], first_id=half)
            deadline = time.monotonic() + 120
            while not await drained(fresh_nats_server.url):
                assert time.monotonic() < deadline, "inputs not drained after the restart"
                await asyncio.sleep(0.2)
        finally:
            await worker.stop()
        assert sink.query(COUNT_SQL)[0] == {"n": 1200, "u": 1200}
        sink.close()

    asyncio.run(main())


def test_worker_exits_nonzero_on_invalid_policies(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(records.policy().replace("audit.verb ==", "audit.verb == =="))
    env = dict(os.environ, ACTIVITY_NATS_URL="nats://127.0.0.1:1")
    proc = subprocess.run(
        [sys.executable, "-m", "processor", "run", "--policies", str(bad)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "bad.yaml" in proc.stderr
    assert "spec.auditRules[0].match" in proc.stderr


CH_DDL = (
    "CREATE TABLE IF NOT EXISTS audit.activities (activity_json String, "
    "name String MATERIALIZED visitParamExtractString(activity_json, 'name')) "
    "ENGINE = ReplacingMergeTree() ORDER BY name"
)


def test_clickhouse_outage_pauses_then_catches_up(
    fresh_clickhouse_server: Any, fresh_nats_server: NatsServer, policy_dir: Path
):
    """The native-protocol sink against a real server that is stopped mid-stream (18.16 table)."""
    server = fresh_clickhouse_server
    nats_url = fresh_nats_server.url
    sink = open_sink(
        server.url, tables={"activities": "activity_json"}, connect_timeout=2.0,
        send_receive_timeout=5.0,
    )  # fmt: skip
    sink.execute("CREATE DATABASE IF NOT EXISTS audit")
    sink.execute(CH_DDL)
    recs = [records.audit(f"ch-{i}", seq=i) for i in range(400)]
    messages = [(records.audit_subject(r, PARTITIONS), orjson.dumps(r)) for r in recs]

    async def main() -> None:
        settings = Settings(
            nats_url=nats_url, partition_count=PARTITIONS, batch_max_age=0.1, health_addr="",
            policy_bucket="", ack_wait=3.0, consumer_name="ch-outage",
            event_consumer_name="ch-outage-events", shared_consumer=False,
        )  # fmt: skip
        worker = Worker(settings, [str(policy_dir)], sink=sink)
        await worker.start()
        pipeline = worker.pipeline
        assert pipeline is not None
        try:
            await publish(nats_url, messages[:200], first_id=10_000)
            await _until(lambda: pipeline.committed_records >= 200, 60)
            await asyncio.to_thread(server.stop)
            await publish(nats_url, messages[200:], first_id=10_200)
            await asyncio.sleep(4)  # inserts fail and are retried; nothing is acked meanwhile
            assert pipeline.committed_records == 200
            assert worker.metrics.sink_errors.labels("activities")._value.get() > 0
            await asyncio.to_thread(server.start)
            await _until(lambda: pipeline.committed_records >= 400, 120)
        finally:
            await worker.stop()

    asyncio.run(main())
    (row,) = sink.query("SELECT count() AS n, uniqExact(name) AS u FROM audit.activities FINAL")
    sink.close()
    assert row == {"n": 400, "u": 400}


async def _until(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
