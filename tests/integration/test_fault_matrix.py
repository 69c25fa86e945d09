"""The fault matrix: each outage against a real nats-server, a real worker and chDB.

While a fault lasts, the inputs it touches stay unacknowledged (held in progress, not redelivered,
not dropped, not dead-lettered in its place); once it is repaired, every case ends with the same
accounting:

* each wanted input is one activity in the store, read with ``FINAL`` as the query layer reads it
  (no visible duplicate), and one message on ACTIVITIES (distinct ``Nats-Msg-Id``, right total);
* each failed record is one dead letter (distinct ``Nats-Msg-Id``), counted once in
  ``activity_processor_dlq_events_published_total``;
* every input is acknowledged: no consumer of the input streams has pending or unacked messages.

Cases: ACTIVITIES deleted; ACTIVITIES full (``discard: new``); the dead-letter stream deleted;
MaxDeliver exhausted by a crash loop; a read-only chDB directory; the policy bucket deleted during a
reload; one of two partitioned workers killed and restarted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from nats.js import api
from nats.js.errors import NoStreamResponseError

from processor.bench.local import free_port
from processor.cli import main as cli
from processor.deadletter import decode_dead_letter, original_payload_bytes
from processor.sink.base import Sink
from processor.sink.factory import open_sink
from processor.sink.memory import MemorySink
from processor.sink.migrate import migrate
from processor.stream.server import NatsServer
from processor.stream.topology import STREAMS, ensure_streams, partition_consumer_name
from processor.worker.runner import Worker
from tests.integration import records
from tests.integration.fault_tools import (
    ACK_WAIT,
    PARTITIONS,
    ROWS_SQL,
    ReadOnlyStore,
    answers,
    as_messages,
    assert_published_once,
    at_least,
    backlog,
    count,
    counter_total,
    drained,
    http_get,
    kill,
    log_on_failure,
    message_ids,
    publish,
    read_stream,
    settings,
    start_worker,
    stored_once,
    terminate,
    until,
    worker_on,
)

pytestmark = pytest.mark.integration

HOLD = ACK_WAIT * 1.5  # how long a fault is held: past ack_wait, so a lost +WPI would show


# -- fixtures and inputs --------------------------------------------------------------------------
@pytest.fixture
def url(fresh_nats_server: NatsServer) -> str:
    """A server of this test only: the tests delete and replace its streams."""
    return str(fresh_nats_server.url)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Sink]:
    """chDB in this process, migrated (the in-process worker inserts into it)."""
    sink = open_sink(f"chdb://{tmp_path / 'store'}")
    migrate(sink)
    sink.open()
    try:
        yield sink
    finally:
        sink.close()


# -- 1. ACTIVITIES deleted ------------------------------------------------------------------------
def test_activities_stream_deleted_holds_the_inputs_until_it_is_back(
    url: str, policy_dir: Path, store: Sink
):
    recs = [records.audit(f"gone-{i}", seq=i) for i in range(60)]
    first, rest = as_messages(recs[:30], lists=1), as_messages(recs[30:], lists=1)

    async def main() -> list[str]:
        async with worker_on(url, policy_dir, store) as (worker, js):
            pipeline = worker.pipeline
            await publish(js, first, "a")
            await until(lambda: pipeline.committed_records == 30, what="the first part committed")
            await js.delete_stream("ACTIVITIES")
            await publish(js, rest, "b")
            await until(lambda: pipeline.publish_error, what="a failing publish")
            assert "no responders" in pipeline.publish_error
            await asyncio.sleep(HOLD)
            assert await backlog(js) == (0, len(rest), 0)  # held in progress, not redelivered
            assert pipeline.committed_records == 30
            assert await count(js, "ACTIVITY_DEAD_LETTER") == 0
            await ensure_streams(js)
            await until(lambda: drained(js), what="every input acknowledged")
            assert pipeline.publish_error == ""
            return await message_ids(js, "ACTIVITIES")

    ids = asyncio.run(main())
    rows = stored_once(store, recs)
    # the first part's activities went with the deleted stream; the rest is on the new one, once
    assert_published_once(ids, rows, recs[30:])


# -- 2. ACTIVITIES full ---------------------------------------------------------------------------
def test_activities_stream_full_pauses_until_its_limit_is_raised(
    url: str, policy_dir: Path, store: Sink
):
    recs = [records.audit(f"full-{i}", seq=i) for i in range(30)]
    small = dataclasses.replace(
        STREAMS["ACTIVITIES"].config(), discard=api.DiscardPolicy.NEW, max_msgs=5
    )

    async def main() -> list[str]:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().add_stream(small)  # the worker binds to it as it is
        finally:
            await nc.drain()
        limits = {"batch_max_records": 5, "max_pending_records": 10, "pull_batch": 4}
        async with worker_on(url, policy_dir, store, **limits) as (worker, js):
            pipeline = worker.pipeline
            await publish(js, as_messages(recs), "full")
            await until(lambda: worker.metrics.paused._value.get() == 1, what="fetching paused")
            assert all(c.paused for c in worker.consumers)
            assert "maximum messages exceeded" in pipeline.publish_error
            await asyncio.sleep(HOLD)
            assert await count(js, "ACTIVITIES") == 5
            pending, unacked, redelivered = await backlog(js)
            assert pending + unacked == 30 - pipeline.committed_messages >= 25  # nothing dropped
            assert redelivered == 0
            assert await count(js, "ACTIVITY_DEAD_LETTER") == 0
            await js.update_stream(dataclasses.replace(small, max_msgs=-1))
            await until(lambda: drained(js), what="every input acknowledged")
            assert worker.metrics.paused._value.get() == 0
            assert not any(c.paused for c in worker.consumers)
            return await message_ids(js, "ACTIVITIES")

    ids = asyncio.run(main())
    assert_published_once(ids, stored_once(store, recs), recs)


# -- 3. dead-letter stream deleted ----------------------------------------------------------------
def test_dead_letter_stream_deleted_holds_the_failed_records(
    url: str, policy_dir: Path, store: Sink
):
    (policy_dir / "deployments.yaml").write_text(
        records.policy().replace(
            "deleted deployment {{ audit.objectRef.name }}", "deleted {{ audit.objectRef.nope.x }}"
        )
    )
    good = [records.audit(f"ok-{i}", seq=i) for i in range(12)]
    bad = [records.audit(f"bad-{i}", verb="delete", seq=i) for i in range(7)]
    listed = good[:2] + bad[:2]  # one EventList of both kinds
    messages = [("audit.k8s.p1", records.event_list(listed))]
    messages += as_messages(good[2:] + bad[2:])
    messages += [("audit.k8s.p2", b'{"kind": "Event", "auditID": '), ("audit.k8s.p3", b"\xff{")]

    async def main() -> tuple[list[str], list[Any]]:
        async with worker_on(url, policy_dir, store) as (worker, js):
            pipeline = worker.pipeline
            await js.delete_stream("ACTIVITY_DEAD_LETTER")
            await publish(js, messages, "dlq")
            await until(lambda: "no responders" in pipeline.publish_error, what="DLQ failing")
            await asyncio.sleep(HOLD)
            _, unacked, redelivered = await backlog(js)
            assert unacked >= 1 + 5 + 2  # every message with a dead letter waits for it
            assert redelivered == 0
            assert counter_total(worker.metrics.dlq_published) == 0
            await ensure_streams(js)
            await until(lambda: drained(js), what="every input acknowledged")
            letters = await read_stream(js, "ACTIVITY_DEAD_LETTER")
            assert counter_total(worker.metrics.dlq_published) == 7 + 2
            return await message_ids(js, "ACTIVITIES"), letters

    ids, letters = asyncio.run(main())
    letter_ids = [m.headers["Nats-Msg-Id"] for m in letters]
    assert len(letter_ids) == len(set(letter_ids)) == 7 + 2
    kinds = collections.Counter(decode_dead_letter(m.data)["errorType"] for m in letters)
    assert kinds == {"cel_summary": 7, "unmarshal": 2}
    assert_published_once(ids, stored_once(store, good), good)


def test_dead_letter_stream_full_refuses_and_holds_instead_of_evicting(
    url: str, policy_dir: Path, store: Sink
):
    """The DLQ is the only copy of a dead letter: full, it refuses new ones (``discard: new``,
    as the worker creates it) and the worker holds their inputs; it never evicts the oldest."""
    bad = [(f"audit.k8s.p{i % PARTITIONS}", b'{"kind": "Event", "n": %d' % i) for i in range(6)]
    small = dataclasses.replace(STREAMS["ACTIVITY_DEAD_LETTER"].config(), max_msgs=3)
    assert small.discard == api.DiscardPolicy.NEW

    async def main() -> list[Any]:
        nc = await nats.connect(url)
        try:
            await nc.jetstream().add_stream(small)  # the worker binds to it as it is
        finally:
            await nc.drain()
        async with worker_on(url, policy_dir, store) as (worker, js):
            pipeline = worker.pipeline
            await publish(js, bad, "dlqfull")
            await until(lambda: "maximum messages" in pipeline.publish_error, what="DLQ full")
            await asyncio.sleep(HOLD)
            first = await read_stream(js, "ACTIVITY_DEAD_LETTER")
            assert len(first) == 3  # the first three kept, none evicted
            _, unacked, redelivered = await backlog(js)
            # the refused ones' inputs wait (with the rest of their pull group), none is lost
            assert unacked + pipeline.committed_messages == 6 and unacked >= 3
            assert redelivered == 0
            await js.update_stream(dataclasses.replace(small, max_msgs=-1))
            await until(lambda: drained(js), what="every input acknowledged")
            assert counter_total(worker.metrics.dlq_published) == 6
            return await read_stream(js, "ACTIVITY_DEAD_LETTER")

    letters = asyncio.run(main())
    payloads = sorted(original_payload_bytes(decode_dead_letter(m.data), m.data) for m in letters)
    assert payloads == sorted(payload for _, payload in bad)


# -- 4. MaxDeliver exhausted ----------------------------------------------------------------------
def test_max_deliver_exhausted_by_a_crash_loop_is_dead_lettered_once(
    url: str, policy_dir: Path, tmp_path: Path
):
    """A record whose worker is killed (OOM, node loss) before it commits, twice, with
    ``max_deliver`` 2: NATS gives up; the workers still running turn the advisory into one
    ``max_deliveries`` dead letter holding the payload byte for byte."""
    rec = records.audit("poison", seq=1)
    payload = orjson.dumps(rec)
    subject = records.audit_subject(rec, PARTITIONS)
    durable = partition_consumer_name("activity-processor", int(subject.rpartition("p")[2]))
    log = tmp_path / "worker.log"
    # a batch held for 30 s: the worker is killed with the record received, not committed
    holding = ("--clickhouse-url", "memory://", "--max-deliver", "2", "--batch-max-age", "30")

    async def deliveries(js: Any) -> int:
        with contextlib.suppress(Exception):
            return int((await js.consumer_info("AUDIT_EVENTS", durable)).delivered.consumer_seq)
        return -1

    async def main() -> tuple[list[Worker], list[Any], int, list[str]]:
        nc = await nats.connect(url)
        try:
            seq, watchers = await crash_loop(nc.jetstream())
            await until(lambda: drained(nc.jetstream()), what="nothing left unacknowledged")
            letters = await read_stream(nc.jetstream(), "ACTIVITY_DEAD_LETTER")
            return watchers, letters, seq, await message_ids(nc.jetstream(), "ACTIVITIES")
        finally:
            await nc.drain()

    async def crash_loop(js: Any) -> tuple[int, list[Worker]]:
        """Publish, kill the worker holding it, again; two more workers see NATS give up."""
        watchers: list[Worker] = []
        worker = start_worker(url, log, policy_dir, *holding)
        try:
            await until(lambda: at_least(deliveries(js), 0), 60, "the first worker's consumers")
            seq = (await js.publish(subject, payload)).seq
            await until(lambda: at_least(deliveries(js), 1), what="the first delivery")
            await kill(worker)
            worker = start_worker(url, log, policy_dir, *holding)
            await until(lambda: at_least(deliveries(js), 2), 60, "the redelivery to the restart")
            for _ in range(2):  # on the same consumers, both following the advisories
                watchers.append(
                    Worker(settings(url, max_deliver=2), [str(policy_dir)], sink=MemorySink())
                )
                await watchers[-1].start()
            await kill(worker)
            await until(lambda: all(w.advisories.seen for w in watchers), 30, "the advisory")
        finally:
            if worker.poll() is None:
                await kill(worker)
            for w in watchers:
                await w.stop()  # waits for the dead letters under way
        return seq, watchers

    with log_on_failure(log):
        watchers, letters, seq, ids = asyncio.run(main())
    (letter,) = letters
    assert letter.headers["Nats-Msg-Id"] == f"dlq-maxdeliver-AUDIT_EVENTS-{seq}"
    record = decode_dead_letter(letter.data)
    assert record["errorType"] == "max_deliveries"
    assert record["type"] == "audit"
    assert original_payload_bytes(record, letter.data) == payload
    for w in watchers:
        assert w.metrics.max_deliveries.labels("AUDIT_EVENTS", durable)._value.get() == 1
    assert sum(counter_total(w.metrics.dlq_published) for w in watchers) == 1  # stored once
    assert len(ids) == len(set(ids)) <= 1  # published on receipt, before the kills: once


# -- 5. chDB failing ------------------------------------------------------------------------------
def test_read_only_chdb_directory_pauses_then_catches_up(
    url: str, policy_dir: Path, tmp_path: Path
):
    recs = [records.audit(f"ro-{i}", seq=i) for i in range(40)]
    first, rest = as_messages(recs[:20]), as_messages(recs[20:], lists=1)
    chdb, log, port = tmp_path / "chdb", tmp_path / "worker.log", free_port()
    fault = ReadOnlyStore(chdb, tmp_path / "sink-broken")
    flags = ("--clickhouse-url", f"chdb://{chdb}", "--migrate", "true")

    async def main() -> list[str]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_streams(js)
        health = ("--health-addr", f"127.0.0.1:{port}")
        worker = start_worker(url, log, policy_dir, *flags, *health, prefix=fault.command())
        try:
            await until(lambda: answers(port, "/readyz", 200), 60, "the worker ready")
            await publish(js, first, "ro-a")
            await until(lambda: drained(js), what="the first part acknowledged")
            fault.fail()
            await publish(js, rest, "ro-b")
            await until(lambda: answers(port, "/readyz", 500), what="readiness failing")
            _, text = await http_get(port, "/readyz")
            assert b"[-]sink failed: insert into activities failing: " in text, text
            await asyncio.sleep(HOLD)
            pending, unacked, redelivered = await backlog(js)
            assert pending + unacked == len(rest)  # nothing acknowledged meanwhile
            assert redelivered == 0
            assert await count(js, "ACTIVITY_DEAD_LETTER") == 0  # and nothing dead-lettered
            fault.repair()
            await until(lambda: drained(js), 60, "every input acknowledged")
            await until(lambda: answers(port, "/readyz", 200), what="readiness back")
            await terminate(worker, log)
            return await message_ids(js, "ACTIVITIES")
        finally:
            fault.repair()
            if worker.poll() is None:
                await kill(worker)
            await nc.drain()

    with log_on_failure(log):
        ids = asyncio.run(main())
    sink = open_sink(f"chdb://{chdb}")
    try:
        assert_published_once(ids, stored_once(sink, recs), recs)
    finally:
        sink.close()


# -- 6. policy bucket unavailable during a reload -------------------------------------------------
def test_policy_bucket_deleted_keeps_the_running_set_then_follows_the_new_one(
    url: str, policy_dir: Path, store: Sink, tmp_path: Path
):
    bucket = "policies-fault-matrix"
    versions = {}
    for word in ("launched", "shipped", "rolled out"):
        versions[word] = tmp_path / f"{word.replace(' ', '-')}.yaml"
        versions[word].write_text(records.policy(word=word))
    recs = [records.audit(f"kv-{i}", seq=i) for i in range(4)]

    def active(worker: Worker) -> str:
        return str(worker.reloader.current.policies[0].raw["spec"]["auditRules"][0]["summary"])

    async def apply(word: str) -> None:
        args = ["policy", "apply", "-f", str(versions[word]), "--nats-url", url, "--bucket", bucket]
        assert await asyncio.to_thread(cli, args) == 0

    async def main() -> None:
        async with worker_on(url, policy_dir, store, policy_bucket=bucket) as (worker, js):
            pipeline = worker.pipeline
            await apply("launched")
            await until(lambda: "launched" in active(worker), what="the bucket's version")
            await publish(js, as_messages(recs[:1]), "kv-a")
            await until(lambda: pipeline.committed_records == 1, what="a record committed")
            kv = await js.key_value(bucket)
            assert await js.delete_key_value(bucket)
            with pytest.raises(NoStreamResponseError):  # no stream takes the put
                await kv.put("deployments", orjson.dumps({"spec": "shipped"}))
            await asyncio.sleep(HOLD)  # the watch fails and retries meanwhile
            assert "launched" in active(worker)
            await publish(js, as_messages(recs[1:2]), "kv-b")
            await until(lambda: pipeline.committed_records == 2, what="processing goes on")
            await apply("rolled out")  # creates the bucket again
            await until(lambda: "rolled out" in active(worker), 20, "the new bucket's version")
            await publish(js, as_messages(recs[2:]), "kv-c")
            await until(lambda: drained(js), what="every input acknowledged")
            assert pipeline.committed_records == 4

    asyncio.run(main())
    rows = stored_once(store, recs)
    assert [rows[r["auditID"]]["summary"] for r in recs] == [
        "alice launched deployment kv-0",
        "alice launched deployment kv-1",
        "alice rolled out deployment kv-2",
        "alice rolled out deployment kv-3",
    ]


# -- 7. two partitioned workers, one killed and restarted -----------------------------------------
def test_two_partitioned_workers_one_killed_and_restarted(
    url: str, policy_dir: Path, tmp_path: Path
):
    parts = 8
    recs = [records.audit(f"part-{i}", seq=i) for i in range(8000)]
    messages = as_messages(recs, lists=120, per_list=50, partitions=parts)
    # Published while the low worker is down, so its restart always has work to take over, however
    # fast it went through the first messages before the kill.
    late = [records.audit(f"late-{i}", seq=i) for i in range(400)]
    owner: dict[str, int] = {}  # auditID -> the partition of the message that carried it
    for k in range(120):
        owner.update((r["auditID"], k % parts) for r in recs[k * 50 : (k + 1) * 50])
    for r in recs[6000:] + late:
        owner[r["auditID"]] = int(records.audit_subject(r, parts).rpartition("p")[2])
    log = tmp_path / "worker.log"
    dirs = {"low": tmp_path / "chdb-low", "high": tmp_path / "chdb-high"}
    own = {"low": "0-3", "high": "4-7"}
    low_durables = tuple(
        partition_consumer_name(base, n)
        for base in ("activity-processor", "activity-event-processor")
        for n in range(4)
    )

    def start(name: str) -> subprocess.Popen[bytes]:
        flags = ("--clickhouse-url", f"chdb://{dirs[name]}", "--migrate", "true",
                 "--partition-count", str(parts), "--partitions", own[name])  # fmt: skip
        return start_worker(url, log, policy_dir, *flags)

    async def low_started(js: Any) -> bool:
        delivered = 0
        for info in await js.consumers_info("AUDIT_EVENTS"):
            if info.name in low_durables and info.delivered is not None:
                delivered += info.delivered.consumer_seq or 0
        return delivered > 0

    async def main() -> list[str]:
        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_streams(js)
        await publish(js, messages, "part")
        workers = {name: start(name) for name in dirs}
        try:
            await until(lambda: low_started(js), 120, "the low worker's first deliveries")
            await kill(workers["low"])
            await publish(js, as_messages(late, partitions=parts), "late")
            left = await backlog(js, low_durables)
            assert left[0] + left[1] > 0, "no input left for the restarted low worker"
            workers["low"] = start("low")
            await until(lambda: drained(js), 180, "every input acknowledged after the restart")
            for proc in workers.values():
                await terminate(proc, log)
            return await message_ids(js, "ACTIVITIES")
        finally:
            for proc in workers.values():
                if proc.poll() is None:
                    await kill(proc)
            await nc.drain()

    with log_on_failure(log):
        ids = asyncio.run(main())
    origins: dict[str, list[str]] = {}
    for name, path in dirs.items():
        sink = open_sink(f"chdb://{path}")
        try:
            origins[name] = [r["origin_id"] for r in sink.query(ROWS_SQL)]
        finally:
            sink.close()
    for name, got in origins.items():
        assert len(got) == len(set(got)), f"a duplicate is visible in the {name} store"
    assert {owner[o] for o in origins["low"]} <= set(range(4))
    assert {owner[o] for o in origins["high"]} <= set(range(4, 8))
    assert sorted(origins["low"] + origins["high"]) == sorted(owner)
    assert len(ids) == len(set(ids)) == len(recs) + len(late)
