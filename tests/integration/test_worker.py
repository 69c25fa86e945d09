"""The worker in-process against a real nats-server: routing, delivery, DLQ, reload, outage."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest

from processor.cli import main
from processor.config import Settings
from processor.sink.memory import MemorySink
from processor.stream.consumer import PULL_REQUESTS
from processor.stream.topology import ensure_streams
from processor.worker.runner import Worker
from tests.integration import records

pytestmark = pytest.mark.integration

PARTITIONS = 4
BUCKET = "policies-kv-test"


def settings(url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "nats_url": url,
        "partition_count": PARTITIONS,
        "batch_max_age": 0.05,
        "health_addr": "127.0.0.1:0",
        "watch_interval": 0.1,
        "ack_wait": 5.0,
    }
    base.update(overrides)
    return Settings(**base)


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.02)


async def with_worker(
    url: str,
    policy_dir: Path,
    body: Callable[[Worker, Any], Awaitable[None]],
    sink: MemorySink | None = None,
    **overrides: Any,
) -> MemorySink:
    sink = sink or MemorySink()
    worker = Worker(settings(url, **overrides), [str(policy_dir)], sink=sink)
    await worker.start()
    nc = await nats.connect(url)
    try:
        await body(worker, nc.jetstream())
    finally:
        await guarded(nc.drain(), "the test connection's drain")
        await guarded(worker.stop(), "the worker's stop")
    return sink


async def guarded(step: Awaitable[Any], what: str, timeout: float = 120.0) -> Any:
    """Await ``step``; if it has not returned within ``timeout`` (a guard: a teardown hung once,
    silently, until pytest's timeout), fail naming it, with every task's stack."""
    try:
        return await asyncio.wait_for(step, timeout)
    except TimeoutError:
        stacks = []
        for task in asyncio.all_tasks():
            frames = "".join(
                f"\n    {f.f_code.co_filename}:{f.f_lineno} {f.f_code.co_name}"
                for f in task.get_stack()
            )
            stacks.append(f"{task.get_name()} {task.get_coro()!r}{frames}")
        raise AssertionError(f"{what} hung for {timeout}s; tasks:\n" + "\n".join(stacks)) from None


@pytest.fixture
def nats_url(fresh_nats_server: Any) -> str:
    """A server of this test only: a new consumer replays its stream from the start, so shared
    streams would leak earlier tests' records into this one."""
    return str(fresh_nats_server.url)


def summaries(sink: MemorySink) -> list[str]:
    return [orjson.loads(row)["spec"]["summary"] for row in sink.rows("activities")]


def test_partitions_upstream_subjects_lists_and_dead_letters(nats_url: str, policy_dir: Path):
    singles = [records.audit(f"web-{i}", seq=i) for i in range(30)]
    listed = [records.audit(f"api-{i}", seq=100 + i) for i in range(20)]
    upstream = [records.audit(f"up-{i}", seq=200 + i) for i in range(5)]
    noise = [records.audit(f"web-{i}", verb="get", seq=300 + i) for i in range(10)]

    async def body(worker: Worker, js: Any) -> None:
        before = (await js.stream_info("ACTIVITIES")).state.messages
        dlq_before = (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages
        for rec in singles + noise:
            await js.publish(records.audit_subject(rec, PARTITIONS), orjson.dumps(rec))
        await js.publish("audit.k8s.p1", records.event_list(listed))
        for rec in upstream:
            await js.publish("audit.k8s.activity", orjson.dumps(rec))
        await js.publish("audit.k8s.p2", b'{"kind": "Event", "auditID": ')  # malformed
        await js.publish("events.p3", orjson.dumps(records.event("web-1", seq=1)))
        await js.publish("events.default", orjson.dumps(records.event("web-2", seq=2)))
        total = len(singles) + len(noise) + 1 + len(upstream) + 1 + 2
        await wait_for(lambda: worker.pipeline.committed_messages >= total, what="all committed")
        activities = await js.stream_info("ACTIVITIES")
        assert activities.state.messages - before == 30 + 20 + 5 + 2
        dlq = await js.stream_info("ACTIVITY_DEAD_LETTER")
        assert dlq.state.messages - dlq_before == 1
        sub = await js.pull_subscribe("activity.dlq.>", durable=None, stream="ACTIVITY_DEAD_LETTER")
        (msg,) = await sub.fetch(1, timeout=5)
        record = orjson.loads(msg.data)
        assert record["errorType"] == "unmarshal"
        assert msg.subject == "activity.dlq.audit.unknown.unknown"
        await msg.ack()
        name = (await sub.consumer_info()).name
        await sub.unsubscribe()
        await js.delete_consumer("ACTIVITY_DEAD_LETTER", name)
        for consumer in worker.consumers:
            info = await js.consumer_info(consumer.stream, consumer.durable)
            assert info.num_pending == 0, consumer.durable
        m = worker.metrics
        assert m.events_errored.labels("audit_log", "unmarshal")._value.get() == 1
        assert m.events_received.labels("audit_log", "apps", "deployments")._value.get() == 65
        assert m.events_skipped.labels("audit_log", "no_matching_policy")._value.get() == 10
        generated = m.activities_generated.labels("deployments", "apps", "Deployment")
        assert generated._value.get() == 55  # audit activities only, as upstream

    sink = asyncio.run(with_worker(nats_url, policy_dir, body))
    got = summaries(sink)
    assert len(got) == 57
    assert len(set(got)) == 57
    assert "alice created deployment web-7" in got
    assert "alice created deployment up-4" in got
    assert "web-2 scaled" in got


def test_partitioned_consumers_are_split_between_workers(nats_url: str, policy_dir: Path):
    recs = [records.audit(f"svc-{i}", seq=i) for i in range(40)]

    async def main_() -> tuple[MemorySink, MemorySink]:
        a, b = MemorySink(), MemorySink()
        w1 = Worker(
            settings(nats_url, partitions="0-1", shared_consumer=False), [str(policy_dir)], a
        )
        w2 = Worker(
            settings(nats_url, partitions="2,3", shared_consumer=False), [str(policy_dir)], b
        )
        await w1.start()
        await w2.start()
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        for rec in recs:
            await js.publish(records.audit_subject(rec, PARTITIONS), orjson.dumps(rec))
        await wait_for(
            lambda: w1.pipeline.committed_messages + w2.pipeline.committed_messages >= len(recs)
        )
        await nc.drain()
        await w1.stop()
        await w2.stop()
        return a, b

    a, b = asyncio.run(main_())
    first, second = summaries(a), summaries(b)
    assert first and second
    assert len(first) + len(second) == len(set(first) | set(second)) == 40
    for summary in first:
        rec = next(r for r in recs if summary.endswith(" " + r["objectRef"]["name"]))
        assert records.audit_subject(rec, PARTITIONS) in ("audit.k8s.p0", "audit.k8s.p1")


def test_sink_outage_pauses_then_catches_up(nats_url: str, policy_dir: Path):
    recs = [records.audit(f"db-{i}", seq=i) for i in range(25)]
    sink = MemorySink()
    sink.fail_next(4)

    async def body(worker: Worker, js: Any) -> None:
        for rec in recs:
            await js.publish(records.audit_subject(rec, PARTITIONS), orjson.dumps(rec))
        await wait_for(lambda: worker.pipeline.committed_messages >= len(recs), timeout=30)
        errors = worker.metrics.sink_errors.labels("activities")._value.get()
        assert errors == 4

    asyncio.run(with_worker(nats_url, policy_dir, body, sink=sink))
    assert sorted(summaries(sink)) == sorted(f"alice created deployment db-{i}" for i in range(25))


class GatedSink(MemorySink):
    """A sink whose inserts wait for :attr:`gate` (a slow ClickHouse), telling :attr:`entered`."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def insert(self, table: str, rows: Any, token: str) -> None:
        self.entered.set()
        self.gate.wait(30)
        super().insert(table, rows, token)


async def _backlogs(js: Any) -> list[tuple[str, int, int]]:
    """(consumer, messages not delivered, delivered and not acked) of the input streams."""
    return [
        (info.name, info.num_pending, info.num_ack_pending)
        for stream in ("AUDIT_EVENTS", "EVENTS")
        for info in await js.consumers_info(stream)
    ]


async def _unacked(js: Any) -> int:
    """Messages of the input streams not acknowledged yet (pending or in flight)."""
    return sum(pending + unacked for _, pending, unacked in await _backlogs(js))


def test_stop_during_a_commit_waits_for_it_and_acks(nats_url: str, policy_dir: Path):
    """SIGTERM while the flush loop's insert runs (its activities already on ACTIVITIES): the
    stop waits for that commit and acks its input instead of leaving it to redelivery."""
    recs = [records.audit(f"inflight-{i}", seq=i) for i in range(8)]
    sink = GatedSink()

    async def main_() -> list[tuple[str, int, int]]:
        worker = Worker(settings(nats_url), [str(policy_dir)], sink=sink)
        await worker.start()
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        for rec in recs:
            await js.publish(records.audit_subject(rec, PARTITIONS), orjson.dumps(rec))
        await wait_for(sink.entered.is_set, what="an insert in flight")
        await wait_for(lambda: worker.pipeline.pending_records == len(recs), what="all received")
        release = asyncio.get_running_loop().call_later(0.3, sink.gate.set)
        await worker.stop()
        release.cancel()
        deadline = time.monotonic() + 3  # nats-server applies acks on its own goroutine
        while True:
            left = await _backlogs(js)
            if all(p == u == 0 for _, p, u in left) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        await nc.drain()
        return left

    left = asyncio.run(main_())
    assert left and all(pending == unacked == 0 for _, pending, unacked in left), left
    assert sorted(summaries(sink)) == sorted(
        f"alice created deployment {r['objectRef']['name']}" for r in recs
    )


def test_records_with_nothing_to_keep_are_acked_without_waiting_for_the_sink(
    nats_url: str, policy_dir: Path
):
    """With the insert stuck (a ClickHouse outage), records that give no activity and no dead
    letter (``get``: no rule of the policy matches it) are acked and counted as committed; the
    ones with an activity wait for their commit, then are acked too."""
    wanted = [records.audit(f"keep-{i}", seq=i) for i in range(5)]
    skipped = [records.audit(f"read-{i}", seq=i, verb="get") for i in range(20)]
    sink = GatedSink()

    async def body(worker: Worker, js: Any) -> None:
        for rec in wanted:
            await js.publish(records.audit_subject(rec, PARTITIONS), orjson.dumps(rec))
        await wait_for(sink.entered.is_set, what="an insert in flight")
        for rec in skipped:
            await js.publish(records.audit_subject(rec, PARTITIONS), orjson.dumps(rec))
        await wait_for(
            lambda: worker.pipeline.committed_records == len(skipped), what="the skipped acked"
        )
        deadline = time.monotonic() + 5  # nats-server applies acks on its own goroutine
        while (left := await _unacked(js)) > len(wanted) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert left == len(wanted)  # the wanted wait for the stuck insert
        assert worker.pipeline.pending_records == len(wanted)
        sink.gate.set()
        await wait_for(
            lambda: worker.pipeline.committed_records == len(wanted) + len(skipped),
            what="all committed",
        )
        deadline = time.monotonic() + 5
        while (left := await _unacked(js)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert left == 0

    asyncio.run(with_worker(nats_url, policy_dir, body, sink=sink))
    assert sorted(summaries(sink)) == sorted(f"alice created deployment keep-{i}" for i in range(5))


def test_backpressure_pauses_fetching(nats_url: str, policy_dir: Path):
    """With the insert stuck, fetching stops once ``max_pending_records`` wait: what NATS has
    delivered stays near that bound (plus the pull requests already out, a batch each) while the
    rest waits undelivered; the commit resumes fetching and everything lands once."""
    recs = [records.audit(f"bp-{i}", seq=i) for i in range(200)]
    sink = GatedSink()
    limit, pull_batch = 10, 2

    async def body(worker: Worker, js: Any) -> None:
        try:
            await paused_then_resumed(worker, js)
        finally:
            sink.gate.set()  # a failed check must not leave the stop waiting for the insert

    async def paused_then_resumed(worker: Worker, js: Any) -> None:
        gauge = worker.metrics.paused._value.get
        for rec in recs:
            await js.publish(records.audit_subject(rec, PARTITIONS), orjson.dumps(rec))
        await wait_for(lambda: gauge() == 1, what="fetching paused")
        assert all(c.paused for c in worker.consumers)
        # what is out: the pending records plus the requests every consumer had outstanding
        bound = limit + len(worker.consumers) * PULL_REQUESTS * pull_batch
        for _ in range(10):  # the bound holds over time, not at one instant
            await asyncio.sleep(0.1)
            backlog = await _backlogs(js)
            assert sum(unacked for _, _, unacked in backlog) <= bound, backlog
            assert worker.pipeline.pending_records <= bound
        assert sum(pending for _, pending, _ in backlog) >= len(recs) - bound  # never fetched
        assert gauge() == 1
        sink.gate.set()
        await wait_for(lambda: worker.pipeline.committed_messages >= len(recs), timeout=30)
        assert gauge() == 0
        assert not any(c.paused for c in worker.consumers)
        assert await _settled(js)

    limits = {"batch_max_records": 5, "max_pending_records": limit, "pull_batch": pull_batch}
    asyncio.run(with_worker(nats_url, policy_dir, body, sink=sink, **limits))
    got = summaries(sink)
    assert len(got) == len(set(got)) == len(recs)


async def _settled(js: Any, timeout: float = 5.0) -> bool:
    """Whether every input is acknowledged within ``timeout`` (nats-server applies acks on its
    own goroutine, moments after they are sent)."""
    deadline = time.monotonic() + timeout
    while await _unacked(js):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def test_hot_reload_from_kv_and_rejection(nats_url: str, policy_dir: Path, tmp_path: Path):
    good = tmp_path / "v2.yaml"
    good.write_text(records.policy(word="launched"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(records.policy(word="x").replace("audit.verb ==", "audit.verb == =="))

    async def body(worker: Worker, js: Any) -> None:
        first = records.audit("one", seq=1)
        await js.publish("audit.k8s.p0", orjson.dumps(first))
        await wait_for(lambda: worker.pipeline.committed_messages >= 1)
        code = await asyncio.to_thread(
            main, ["policy", "apply", "-f", str(bad), "--nats-url", nats_url, "--bucket", BUCKET]
        )
        assert code == 1
        code = await asyncio.to_thread(
            main, ["policy", "apply", "-f", str(good), "--nats-url", nats_url, "--bucket", BUCKET]
        )
        assert code == 0
        await wait_for(lambda: "launched" in str(worker.reloader.current.policies[0].raw))
        await js.publish("audit.k8s.p0", orjson.dumps(records.audit("two", seq=2)))
        await wait_for(lambda: worker.pipeline.committed_messages >= 2)

    sink = asyncio.run(with_worker(nats_url, policy_dir, body, policy_bucket=BUCKET))
    assert summaries(sink) == ["alice created deployment one", "alice launched deployment two"]


def test_hot_reload_from_directory(nats_url: str, policy_dir: Path):
    async def body(worker: Worker, js: Any) -> None:
        (policy_dir / "deployments.yaml").write_text(records.policy(word="rolled out"))
        await wait_for(lambda: "rolled out" in str(worker.reloader.current.policies[0].raw))
        await js.publish("audit.k8s.p0", orjson.dumps(records.audit("three", seq=3)))
        await wait_for(lambda: worker.pipeline.committed_messages >= 1)

    sink = asyncio.run(with_worker(nats_url, policy_dir, body, policy_bucket=""))
    assert summaries(sink) == ["alice rolled out deployment three"]


def test_dlq_retry_after_policy_fix(nats_url: str, policy_dir: Path, tmp_path: Path):
    broken = records.policy().replace("{{ audit.objectRef.name }}", "{{ audit.objectRef.nope.x }}")
    (policy_dir / "deployments.yaml").write_text(broken)

    async def body(worker: Worker, js: Any) -> None:
        await js.publish("audit.k8s.p0", orjson.dumps(records.audit("late", seq=5)))
        await wait_for(lambda: worker.pipeline.committed_messages >= 1)
        assert (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages == 1
        (policy_dir / "deployments.yaml").write_text(records.policy())
        await wait_for(lambda: "nope" not in str(worker.reloader.current.policies[0].raw))
        code = await asyncio.to_thread(main, ["dlq", "retry", "--nats-url", nats_url])
        assert code == 0
        await wait_for(lambda: worker.pipeline.committed_activities >= 1)
        assert (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages == 0

    sink = asyncio.run(with_worker(nats_url, policy_dir, body, policy_bucket=""))
    assert summaries(sink) == ["alice created deployment late"]


def test_health_and_metrics_endpoints(nats_url: str, policy_dir: Path):
    async def get(port: int, path: str) -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        head, _, payload = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), payload

    async def body(worker: Worker, js: Any) -> None:
        await js.publish("audit.k8s.p3", orjson.dumps(records.audit("m", seq=1)))
        await wait_for(lambda: worker.pipeline.committed_messages >= 1)
        port = worker.health.port
        assert await get(port, "/readyz") == (200, b"ok\n")
        status, text = await get(port, "/metrics")
        assert status == 200
        assert (
            b'activity_processor_partition_records_total{partition="3",source="audit"} 1.0' in text
        )
        assert b"activity_processor_active_policies 1.0" in text
        assert (
            b'activity_processor_activities_generated_total{api_group="apps",kind="Deployment",'
            b'policy="deployments"} 1.0'
        ) in text
        assert (
            b'activity_processor_events_received_total{api_group="apps",resource="deployments",'
            b'source="audit_log"} 1.0'
        ) in text
        assert b"activity_processor_sink_flush_duration_seconds_bucket" in text

    asyncio.run(with_worker(nats_url, policy_dir, body))


def test_refused_rows_are_dead_lettered_and_the_rest_stored(nats_url: str, policy_dir: Path):
    recs = [records.audit(f"ref-{i}", seq=i) for i in range(6)]
    sink = MemorySink()
    sink.fail_next(1, retriable=False)

    async def body(worker: Worker, js: Any) -> None:
        before = (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages
        await js.publish("audit.k8s.p0", records.event_list(recs))
        await wait_for(lambda: worker.pipeline.committed_messages >= 1)
        # the refused block of 6 is split: 3 + 3 insert fine now, so nothing is lost
        assert (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages == before

    asyncio.run(with_worker(nats_url, policy_dir, body, sink=sink))
    assert len(summaries(sink)) == 6


def test_a_block_refused_row_by_row_is_retried_not_dead_lettered(nats_url: str, policy_dir: Path):
    """Every row of a block refused (a dropped table, revoked grants) is the storage's fault:
    the block waits and retries like an outage instead of dead-lettering good data."""
    recs = [records.audit(f"all-{i}", seq=i) for i in range(6)]
    sink = MemorySink()
    sink.fail_next(10_000, retriable=False)

    async def body(worker: Worker, js: Any) -> None:
        before = (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages
        await js.publish("audit.k8s.p0", records.event_list(recs))
        await wait_for(lambda: "every row refused" in worker.pipeline.sink_error)
        await asyncio.sleep(0.5)
        assert worker.pipeline.committed_messages == 0
        assert (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages == before
        sink.fail_next(0)
        await wait_for(lambda: worker.pipeline.committed_messages >= 1, what="retried and stored")
        assert (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages == before
        assert worker.pipeline.sink_error == ""

    asyncio.run(with_worker(nats_url, policy_dir, body, sink=sink))
    assert len(summaries(sink)) == 6


def test_a_refused_single_row_goes_to_the_dead_letter_queue(nats_url: str, policy_dir: Path):
    sink = MemorySink()
    sink.fail_next(1, retriable=False)

    async def body(worker: Worker, js: Any) -> None:
        before = (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages
        await js.publish("audit.k8s.p0", orjson.dumps(records.audit("alone", seq=1)))
        await wait_for(lambda: worker.pipeline.committed_messages >= 1)
        assert (await js.stream_info("ACTIVITY_DEAD_LETTER")).state.messages == before + 1
        sub = await js.pull_subscribe(
            "activity.dlq.audit.unknown.unknown", durable=None, stream="ACTIVITY_DEAD_LETTER"
        )
        (msg,) = await sub.fetch(1, timeout=5)
        record = orjson.loads(msg.data)
        assert record["errorType"] == "publish"
        assert record["error"].startswith("insert into activities refused: ")
        assert record["originalPayload"]["spec"]["summary"] == "alice created deployment alone"
        await msg.ack()
        name = (await sub.consumer_info()).name
        await sub.unsubscribe()
        await js.delete_consumer("ACTIVITY_DEAD_LETTER", name)

    asyncio.run(with_worker(nats_url, policy_dir, body, sink=sink))
    assert summaries(sink) == []


def test_a_backlog_of_large_messages_does_not_make_a_slow_consumer(nats_url: str, policy_dir: Path):
    """Catching up on ~130 MB of EventLists over 8 partitions keeps the connection.

    With ``pull_max_bytes`` 16 MiB and 18 consumers (8 partitions of two streams plus the shared
    ones) the outstanding requests could ask for 576 MiB at once, far past nats-server's
    ``max_pending`` (64 MB): the server would drop the connection as a slow consumer and every
    in-flight message would wait for its ack_wait. ``pull_budget_bytes`` bounds them together.
    """
    pad = "x" * 4000
    lists = []
    for m in range(280):
        items = [records.audit(f"big-{m}-{i}", verb="get", seq=m * 100 + i) for i in range(100)]
        for item in items:
            item["annotations"] = {"pad": pad}
        lists.append((f"audit.k8s.p{m % 8}", records.event_list(items)))
    total = 100 * len(lists)

    async def main() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_streams(js)
        for subject, payload in lists:
            await js.publish(subject, payload)
        await nc.drain()
        worker = Worker(
            settings(nats_url, partition_count=8, pull_max_bytes=16 * 1024 * 1024),
            [str(policy_dir)],
            sink=MemorySink(),
        )
        await worker.start()
        try:
            await wait_for(lambda: worker.pipeline.committed_records >= total, 120, "the backlog")
            assert worker.metrics.nats_disconnects._value.get() == 0
            assert sum(c.stats.reconnects for c in worker.consumers) == 0
        finally:
            await worker.stop()

    asyncio.run(main())
