"""Conservation under hostile input: a real nats-server, a real worker and chDB.

Hypothesis generates message sequences that mix valid records (the generated corpus and wanted
Deployment creates) with hostile ones: every JSON type at the top level and as EventList items,
``null`` items, invalid UTF-8, truncated JSON, nesting of 100k levels, duplicate keys, wrong types
in the fields the bundled policies read, huge fields up to the input stream's limit and outputs
larger than the output streams'. After each sequence drains, every input must be accounted for
exactly once (``docs/reliability.md``):

- each activity a model translator (same policies, offline) expects is on ``ACTIVITIES`` once and
  in ClickHouse once, and nothing else is;
- each dead letter is on ``ACTIVITY_DEAD_LETTER`` once with its record's bytes (or a pointer to
  them), and the DLQ metric counts exactly those;
- every record is counted as committed, every input is acknowledged, and the worker never
  restarted (same process, its tasks alive, its fast path never fell back on an exception).

One worker serves every example (it runs on an event loop thread of its own), so an example's
records carry unique ids and its outputs are told apart by them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from processor.activity import encode_activity
from processor.bench.hostile import (
    AUDITS,
    EVENTS,
    ITEM_VALUES,
    MIB,
    PATHS,
    TOP_LEVEL,
    WRONG,
    Builder,
)
from processor.config import Settings
from processor.deadletter import original_payload_bytes, payload_from_ref
from processor.policy.compile import load_engine
from processor.stream.server import NatsServer
from processor.translate import Output, Translator
from processor.worker.runner import Worker
from tests.integration.nats_server import require_nats_binary

pytestmark = pytest.mark.integration

POLICIES = Path(__file__).resolve().parents[2] / "policies"
#: The server takes what AUDIT_EVENTS takes (10 MiB); its default 1 MiB would refuse the input.
MAX_PAYLOAD = 12 * MIB


class Rig:
    """A nats-server and one worker (chDB sink) on an event loop thread of their own."""

    def __init__(self, root: Path) -> None:
        require_nats_binary()
        self.server = NatsServer(root / "nats", max_payload=MAX_PAYLOAD)
        url = self.server.start()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.settings = Settings(
            nats_url=url,
            clickhouse_url=f"chdb://{root / 'chdb'}",
            partition_count=2,
            batch_max_age=0.05,
            health_addr="",
            watch_interval=60.0,
            policy_bucket="",
        )
        self.worker = Worker(self.settings, [str(POLICIES)])
        self.run(self.worker.start())
        self.nc: Any = self.run(nats.connect(url, max_reconnect_attempts=-1))
        self.js = self.nc.jetstream()
        self.dlq = self.run(
            self.js.pull_subscribe(
                "activity.dlq.>", durable="conservation", stream="ACTIVITY_DEAD_LETTER"
            )
        )
        self.model = Translator(load_engine([str(POLICIES)]), self.settings.max_record_bytes)
        self.examples = 0

    def run(self, coro: Any, timeout: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self.nc.close())
            self.run(self.worker.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
            self.server.stop()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("conservation"))
    try:
        yield rig
    finally:
        rig.close()


# --- what goes in ------------------------------------------------------------------------------

record_spec = st.one_of(
    st.tuples(st.just("valid"), st.integers(0, len(AUDITS) - 1)),
    st.tuples(st.just("wanted"), st.sampled_from(["create", "update", "delete", "patch"])),
    st.tuples(
        st.just("wrong"), st.integers(0, 10**6), st.sampled_from(PATHS), st.sampled_from(WRONG)
    ),
    st.tuples(st.just("dupkey"), st.integers(0, len(AUDITS) - 1)),
    st.tuples(st.just("deepfield"), st.integers(0, len(AUDITS) - 1)),
    st.tuples(st.just("hugename"), st.sampled_from([64 * 1024, MIB + 7])),
)
event_item = st.one_of(
    st.tuples(st.just("event"), st.integers(0, max(len(EVENTS) - 1, 0))),
    st.tuples(st.just("item"), st.sampled_from(ITEM_VALUES)),
)
message_spec = st.one_of(
    record_spec,
    st.tuples(
        st.just("eventlist"),
        st.sampled_from(["v1", "events.k8s.io/v1"]),
        st.lists(event_item, max_size=6),
    ),
    st.tuples(st.just("top"), st.sampled_from(TOP_LEVEL)),
    st.tuples(st.just("utf8"), st.integers(0, len(AUDITS) - 1)),
    st.tuples(st.just("truncated"), st.integers(0, len(AUDITS) - 1), st.floats(0.0, 0.99)),
    st.tuples(
        st.just("deep"),
    ),
    st.tuples(
        st.just("hugeinput"),
    ),
    st.tuples(st.just("event"), st.integers(0, max(len(EVENTS) - 1, 0))),
    st.tuples(st.just("eventtop"), st.sampled_from(TOP_LEVEL)),
    st.tuples(
        st.just("list"),
        st.lists(
            st.one_of(record_spec, st.tuples(st.just("item"), st.sampled_from(ITEM_VALUES))),
            min_size=0,
            max_size=6,
        ),
    ),
)


def message(builder: Builder, spec: tuple) -> tuple[str, bytes, str]:
    """:meth:`Builder.message`, and lists of Kubernetes Events as the ingest publishes them
    (``("eventlist", apiVersion, [("event", i) | ("item", value), ...])``)."""
    if spec[0] != "eventlist":
        return builder.message(spec)
    parts = [
        orjson.dumps(builder.stamp(EVENTS[s[1] % len(EVENTS)]) if s[0] == "event" else s[1])
        for s in spec[2]
    ]
    head = b'{"kind":"EventList","apiVersion":"%s","metadata":{},"items":[' % spec[1].encode()
    return "events.p1", head + b",".join(parts) + b"]}", "event"


# --- what comes out ----------------------------------------------------------------------------


def expected(rig: Rig, messages: list[tuple[str, bytes, str]]) -> tuple[Counter, Counter, int]:
    """(activity names, (errorType, payload) of dead letters, records) the model says."""
    names: Counter[str] = Counter()
    letters: Counter[tuple[str, bytes]] = Counter()
    records_total = 0
    limit = rig.worker.pipeline.limits.activity_bytes
    for _subject, payload, hint in messages:
        out = Output()
        rig.model.translate(payload, out, hint)  # type: ignore[arg-type]
        records_total += out.records
        for activity, (buf, s, e) in zip(out.activities, out.origins, strict=True):
            if len(encode_activity(activity)) > limit:
                letters["activity_too_large", buf[s:e]] += 1
            else:
                names[activity["metadata"]["name"]] += 1
        for record, (buf, s, e) in zip(out.dead_letters, out.dead_origins, strict=True):
            letters[record["errorType"], buf[s:e]] += 1
    return names, letters, records_total


async def drained(rig: Rig, messages: int, committed_before: int) -> None:
    worker = rig.worker
    deadline = time.monotonic() + 90
    while True:
        done = worker.pipeline.committed_messages - committed_before >= messages
        if done:
            infos = [await rig.js.consumer_info(c.stream, c.durable) for c in worker.consumers]
            if all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos):
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"inputs not all acknowledged: {messages} sent")
        await asyncio.sleep(0.05)


async def new_activities(rig: Rig, after: int) -> Counter[str]:
    last = (await rig.js.stream_info("ACTIVITIES")).state.last_seq
    names: Counter[str] = Counter()
    for seq in range(after + 1, last + 1):
        msg = await rig.js.get_msg("ACTIVITIES", seq)
        names[(msg.headers or {}).get("Nats-Msg-Id", "")] += 1
    return names


async def dead_letters(rig: Rig) -> Counter[tuple[str, bytes]]:
    letters: Counter[tuple[str, bytes]] = Counter()
    while True:
        try:
            msgs = await rig.dlq.fetch(100, timeout=0.5)
        except (nats.errors.TimeoutError, TimeoutError):
            return letters
        for msg in msgs:
            record = orjson.loads(msg.data)
            ref = record.get("originalPayloadRef")
            if ref is not None:
                held = await rig.js.get_msg(ref["stream"], ref["sequence"])
                payload = payload_from_ref(ref, held.data)
            else:
                payload = original_payload_bytes(record, msg.data)
            letters[record["errorType"], payload] += 1
            await msg.ack()


def stored(rig: Rig, prefix: str) -> Counter[str]:
    sql = (
        f"SELECT activity_name, count() AS n FROM {rig.worker.sink.database}.activities "
        f"WHERE startsWith(origin_id, '{prefix}') GROUP BY activity_name"
    )
    rows = rig.run(_query(rig, sql))
    return Counter({r["activity_name"]: int(r["n"]) for r in rows})


async def _query(rig: Rig, sql: str) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    sink = rig.worker.sink
    assert sink is not None
    return await loop.run_in_executor(rig.worker._sink_thread, sink.query, sql)


def dlq_metric(rig: Rig) -> float:
    return sum(
        s.value
        for metric in rig.worker.metrics.dlq_published.collect()
        for s in metric.samples
        if s.name.endswith("_total")
    )


def exchange(rig: Rig, messages: list[tuple[str, bytes, str]], prefix: str) -> None:
    """Publish ``messages``, wait until all are acknowledged, check every output."""
    rig.run(dead_letters(rig))  # what an earlier failed example left (shrinking replays them)
    want_names, want_letters, want_records = expected(rig, messages)
    worker = rig.worker
    pipeline = worker.pipeline
    committed, records_before = pipeline.committed_messages, pipeline.committed_records
    dlq_before = dlq_metric(rig)
    activities_seq = rig.run(rig.js.stream_info("ACTIVITIES")).state.last_seq

    async def send() -> None:
        for subject, payload, _hint in messages:
            await rig.js.publish(subject, payload, timeout=30)
        await drained(rig, len(messages), committed)

    rig.run(send())
    assert rig.run(new_activities(rig, activities_seq)) == want_names
    assert stored(rig, prefix) == want_names
    got_letters = rig.run(dead_letters(rig))
    assert got_letters == want_letters
    assert dlq_metric(rig) - dlq_before == sum(want_letters.values())
    assert pipeline.committed_records - records_before == want_records
    assert pipeline.translator.fast_path_errors == 0
    alive = [t for t in worker._tasks if t.done()]
    assert not alive, f"worker tasks ended: {alive}"


# --- the tests ---------------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=st.lists(message_spec, min_size=1, max_size=8))
@example(  # every hostile kind at least once, whatever the generated examples hold
    specs=[
        *[("top", t) for t in TOP_LEVEL],
        *[("eventtop", t) for t in TOP_LEVEL],
        ("utf8", 0),
        ("truncated", 1, 0.5),
        ("deep",),
        ("deepfield", 2),
        ("dupkey", 3),
        ("hugeinput",),
        ("hugename", MIB + 7),
        ("event", 0),
        *[("wrong", i, path, WRONG[i % len(WRONG)]) for i, path in enumerate(PATHS)],
        ("list", [("wanted", "create"), *[("item", v) for v in ITEM_VALUES], ("hugename", MIB)]),
        ("list", [("wrong", 5, ("objectRef",), 42), ("valid", 4), ("dupkey", 1)]),
        ("eventlist", "v1", [("event", 0), *[("item", v) for v in ITEM_VALUES], ("event", 1)]),
    ]
)
def test_every_input_is_accounted_for_exactly_once(rig: Rig, specs: list[tuple]) -> None:
    rig.examples += 1
    builder = Builder(f"c{rig.examples}-")
    exchange(rig, [message(builder, s) for s in specs], builder.prefix)


def test_an_activity_too_large_for_its_stream_does_not_stop_the_partition(rig: Rig) -> None:
    """Issue defect 1: a 1 MiB ``objectRef.name`` renders an Activity over ACTIVITIES' 1 MiB.

    It was published for ever, holding back every later input. Now it is dead-lettered
    (``activity_too_large``, as a pointer: the record is too large for the DLQ too) and the
    records after it on the same partition are stored and acknowledged.
    """
    builder = Builder("big-")
    huge = builder.message(("hugename", MIB))
    after = [builder.message(("wanted", "create")) for _ in range(20)]
    assert len(huge[1]) > MIB
    exchange(rig, [huge, *after], builder.prefix)


def test_a_null_item_costs_itself_alone(rig: Rig) -> None:
    """Issue defect 2: a ``null`` EventList item failed its whole pull group, which NATS then
    dropped after MaxDeliver. Now the item is dead-lettered and its neighbours go on."""
    builder = Builder("null-")
    listed = builder.message(
        ("list", [("wanted", "create"), ("item", None), ("wanted", "create"), ("item", 42)])
    )
    singles = [builder.message(("wanted", "create")) for _ in range(2)]
    exchange(rig, [listed, *singles], builder.prefix)
