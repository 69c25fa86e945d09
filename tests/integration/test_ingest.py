"""``activity ingest`` against a real nats-server, over real HTTP on loopback (aiohttp's client):
routing to the partition subjects, status codes, dead letters, outages and retries, and the path
through a real worker. TLS and authentication: ``test_ingest_tls.py``."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from nats.js import api

from processor.bench.hostile import ITEM_VALUES
from processor.config import Settings
from processor.deadletter import decode_dead_letter, original_payload_bytes
from processor.sink.memory import MemorySink
from processor.stream.server import NatsServer
from processor.subjects import audit_partition, event_partition
from processor.worker.runner import Worker
from tests.integration import records
from tests.integration.ingest_tools import (
    PARTITIONS,
    audit_items,
    event_list,
    running_ingest,
    stored,
)
from tests.integration.nats_server import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def nats_url(fresh_nats_server: NatsServer) -> str:
    """A server of this test only: the ingest publishes to the fixed upstream stream names."""
    return str(fresh_nats_server.url)


def test_batch_and_blocking_bodies_land_on_their_partition_subjects(nats_url: str) -> None:
    batch = [records.audit(f"web-{i % 12}", seq=i) for i in range(40)]
    blocking = [records.audit(f"api-{i}", seq=100 + i) for i in range(3)]
    events = [records.event(f"web-{i}", seq=i) for i in range(4)]

    async def body() -> None:
        async with running_ingest(nats_url, batch_items=10, also_publish_shared=True) as c:
            status, summary, _ = await c.post("/audit", event_list(batch))
            assert status == 200, summary
            assert summary["accepted"] == 40 and summary["rejectedCount"] == 0
            assert sum(summary["partitions"].values()) == 40
            for rec in blocking:  # blocking mode: one event per list, on the root path
                assert (await c.post("/", event_list([rec])))[0] == 200
            assert (await c.post("/events", events[0]))[0] == 200
            listed = {"kind": "EventList", "apiVersion": "events.k8s.io/v1", "items": events[1:]}
            assert (await c.post("/events", listed))[0] == 200
            assert await c.get("/readyz") == (200, "ok\n")
            assert (await c.get("/healthz/ping"))[0] == 200
            status, text = await c.get("/metrics")
            assert 'activity_ingest_requests_total{code="200",source="audit"} 4.0' in text

    asyncio.run(body())
    messages = asyncio.run(stored(nats_url, "AUDIT_EVENTS"))
    items = audit_items(messages)
    assert sorted(i["auditID"] for i in items) == sorted(r["auditID"] for r in batch + blocking)
    per_partition: dict[int, int] = {}
    for rec in batch:
        p = audit_partition(rec, PARTITIONS)
        per_partition[p] = per_partition.get(p, 0) + 1
    lists = sum(-(-n // 10) for n in per_partition.values()) + len(blocking)
    shared = [(h["Nats-Msg-Id"], orjson.loads(d)) for s, d, h in messages if "activity" in s]
    assert len(messages) == lists + len(shared)
    assert [(i, r["auditID"]) for i, r in shared] == [
        (r["auditID"], r["auditID"]) for r in batch + blocking
    ]
    event_messages = [m for m in asyncio.run(stored(nats_url, "EVENTS")) if ".p" in m[0]]
    lists = [orjson.loads(d) for _, d, _ in event_messages]  # per request, per partition
    assert all((doc["kind"], doc["apiVersion"]) == ("EventList", "v1") for doc in lists)
    assert sorted((e for doc in lists for e in doc["items"]), key=orjson.dumps) == sorted(
        events, key=orjson.dumps
    )
    for subject, data, _ in event_messages:
        for item in orjson.loads(data)["items"]:
            assert subject == f"events.p{event_partition(item, PARTITIONS)}"


def test_oversized_and_malformed_bodies_publish_nothing(nats_url: str) -> None:
    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    big = orjson.dumps(event_list([records.audit(f"x-{i}", seq=i) for i in range(20)]))
    malformed = [
        ("/audit", b"{not json", "invalid JSON"),
        ("/audit", b"[]", "not an object"),
        ("/audit", orjson.dumps({"kind": "Pod"}), "not an audit.k8s.io EventList"),
        ("/audit", orjson.dumps({**event_list([]), "items": "x"}), "must be a list"),
        ("/events", orjson.dumps(event_list([records.audit("a")])), "POST them to /audit"),
    ]

    async def body() -> None:
        async with running_ingest(nats_url, max_body_bytes=4096) as c:
            status, doc, _ = await c.post("/audit", big)
            assert (status, doc["code"]) == (413, 413)
            async with c.http.post(c.base + "/audit", data=chunks(big)) as response:
                assert response.status == 413  # chunked: no Content-Length to refuse early
            for path, data, reason in malformed:
                status, doc, _ = await c.post(path, data)
                assert status == 400 and reason in doc["error"], (path, doc)
            text = (await c.get("/metrics"))[1]
            assert 'activity_ingest_rejected_total{reason="too_large",source="audit"} 2.0' in text

    asyncio.run(body())
    for stream in ("AUDIT_EVENTS", "EVENTS", "ACTIVITY_DEAD_LETTER"):
        assert asyncio.run(stored(nats_url, stream)) == [], stream


def test_mixed_good_and_bad_items_publish_the_good_and_dead_letter_the_bad(nats_url: str) -> None:
    good = [records.audit(f"ok-{i}", seq=i) for i in range(3)]
    raw = orjson.dumps(event_list([good[0], 42, good[1], "text", good[2], None]))
    raw = raw.replace(b",42,", b", 42 ,")  # the dead letter keeps the bytes as sent

    async def body() -> None:
        async with running_ingest(nats_url) as c:
            for _ in range(2):  # the retry of the same request stores nothing twice
                status, summary, _ = await c.post("/audit", raw)
                assert status == 200
                assert summary["accepted"] == 3 and summary["rejectedCount"] == 3
                assert [r["item"] for r in summary["rejected"]] == [1, 3, 5]
                assert all(r["deadLettered"] for r in summary["rejected"])

    asyncio.run(body())
    items = audit_items(asyncio.run(stored(nats_url, "AUDIT_EVENTS")))
    assert sorted(i["auditID"] for i in items) == sorted(r["auditID"] for r in good)
    dead = asyncio.run(stored(nats_url, "ACTIVITY_DEAD_LETTER"))
    assert {s for s, _, _ in dead} == {"activity.dlq.audit.unknown.unknown"}
    letters = [orjson.loads(d) for _, d, _ in dead]
    assert [(d["errorType"], d["originalPayload"]) for d in letters] == [
        ("unmarshal", 42), ("unmarshal", "text"), ("unmarshal", None),
    ]  # fmt: skip
    assert b'"originalPayload":42,' in dead[0][1]
    assert letters[1]["error"] == "EventList item 3 is a string, not an object"


def test_nats_down_gives_503_and_the_retry_after_it_is_back_stores_once(
    fresh_nats_server: NatsServer,
) -> None:
    url = str(fresh_nats_server.url)
    first = event_list([records.audit(f"a-{i}", seq=i) for i in range(8)])
    second = event_list([records.audit(f"b-{i}", seq=i) for i in range(8)])

    async def body() -> None:
        async with running_ingest(url, publish_timeout=1.0) as c:
            assert (await c.post("/audit", first))[0] == 200
            fresh_nats_server.stop()
            status, doc, headers = await c.post("/audit", second)
            assert status == 503, doc
            assert headers["Retry-After"] == "5"
            await wait_until(lambda: not c.server.nc.is_connected, what="disconnect noticed")
            assert (await c.get("/readyz/nats"))[0] == 500
            fresh_nats_server.restart()
            for _ in range(200):
                if (await c.get("/readyz"))[0] == 200:
                    break
                await asyncio.sleep(0.05)
            for _ in range(2):
                status, summary, _ = await c.post("/audit", second)
                assert status == 200, summary

    asyncio.run(body())
    items = audit_items(asyncio.run(stored(url, "AUDIT_EVENTS")))
    assert sorted(i["auditID"] for i in items) == sorted(
        r["auditID"] for r in first["items"] + second["items"]
    )


def test_a_request_answered_503_after_its_messages_were_sent_is_stored_once(
    fresh_nats_server: NatsServer,
) -> None:
    """The server is frozen (SIGSTOP) while the request publishes: no PubAck in time, 503. Thawed,
    it stores the messages it had received; the client's retry is then all duplicates."""
    url = str(fresh_nats_server.url)
    request = event_list([records.audit(f"s-{i}", seq=i) for i in range(12)])
    pid = fresh_nats_server.pid
    assert pid is not None

    async def body() -> None:
        async with running_ingest(url, publish_timeout=0.5) as c:
            os.kill(pid, signal.SIGSTOP)
            try:
                status, doc, headers = await c.post("/audit", request)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert status == 503 and "Retry-After" in headers, doc
            status, summary, _ = await c.post("/audit", request)
            assert status == 200, summary
            text = (await c.get("/metrics"))[1]
            assert 'activity_ingest_duplicate_messages_total{source="audit"}' in text

    asyncio.run(body())
    items = audit_items(asyncio.run(stored(url, "AUDIT_EVENTS")))
    assert sorted(i["auditID"] for i in items) == sorted(r["auditID"] for r in request["items"])


def test_a_full_stream_gives_429_and_a_missing_one_503(nats_url: str) -> None:
    async def body() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await js.add_stream(
            api.StreamConfig(
                name="AUDIT_EVENTS",
                subjects=["audit.k8s.>"],
                max_msgs=2,
                discard=api.DiscardPolicy.NEW,
                storage=api.StorageType.FILE,
            )
        )
        recs = [records.audit(f"f-{i}", seq=i) for i in range(12)]
        async with running_ingest(nats_url, batch_items=1, retry_after=7) as c:
            status, doc, headers = await c.post("/audit", event_list(recs))
            assert status == 429, doc
            assert headers["Retry-After"] == "7"
            assert "maximum messages exceeded" in doc["error"]
            await js.delete_stream("EVENTS")  # no stream listens: JetStream's no responders
            status, doc, headers = await c.post("/events", records.event("gone"))
            assert (status, headers["Retry-After"]) == (503, "7"), doc
            assert "no responders" in doc["error"]
            await wait_until(lambda: "EVENTS" in c.server.ready_checks()["streams"](), 15, "check")
        await nc.close()

    asyncio.run(body())


def test_linger_gathers_concurrent_requests(nats_url: str) -> None:
    requests = [
        event_list([records.audit(f"l-{i}-{j}", seq=10 * i + j) for j in range(6)])
        for i in range(6)
    ]

    async def body() -> None:
        async with running_ingest(nats_url, linger_ms=1000.0) as c:
            results = await asyncio.gather(*(c.post("/audit", r) for r in requests))
            assert [status for status, _, _ in results] == [200] * len(requests)

    asyncio.run(body())
    messages = asyncio.run(stored(nats_url, "AUDIT_EVENTS"))
    items = audit_items(messages)
    assert len(items) == 36 and len({i["auditID"] for i in items}) == 36
    assert len(messages) <= PARTITIONS  # one EventList per partition for all six requests


def test_linger_gathers_events_of_concurrent_requests_and_acks_durably(nats_url: str) -> None:
    """Events of six concurrent requests share one list per partition, in per-object order;
    with EVENTS gone a lingering request gets 503 with Retry-After, not 200."""
    requests = [
        {
            "kind": "EventList",
            "apiVersion": "v1",
            "items": [records.event(f"l-{j}", seq=10 * i + j) for j in range(6)],
        }
        for i in range(6)
    ]

    async def body() -> None:
        async with running_ingest(nats_url, linger_ms=1000.0) as c:
            results = await asyncio.gather(*(c.post("/events", r) for r in requests))
            assert [status for status, _, _ in results] == [200] * len(requests)
            messages.extend(await stored(nats_url, "EVENTS"))
            nc = await nats.connect(nats_url)
            try:
                await nc.jetstream().delete_stream("EVENTS")
            finally:
                await nc.close()
            status, doc, headers = await c.post("/events", records.event("late"))
            assert status == 503 and headers["Retry-After"] == "5", doc

    messages: list[tuple[str, bytes, dict[str, str]]] = []
    asyncio.run(body())
    assert len(messages) <= PARTITIONS  # one list per partition for all six requests
    seen = []
    for subject, data, headers in messages:
        doc = orjson.loads(data)
        assert (doc["kind"], doc["apiVersion"]) == ("EventList", "v1")
        assert headers["Nats-Msg-Id"].startswith("ingest-")
        assert all(subject == f"events.p{event_partition(e, PARTITIONS)}" for e in doc["items"])
        seen += doc["items"]
    everything = [e for r in requests for e in r["items"]]
    assert sorted(seen, key=orjson.dumps) == sorted(everything, key=orjson.dumps)
    for j in range(6):  # per-object order: request order
        assert [e["metadata"]["uid"] for e in seen if e["regarding"]["name"] == f"l-{j}"] == [
            e["metadata"]["uid"] for e in everything if e["regarding"]["name"] == f"l-{j}"
        ]


def test_shared_events_in_upstreams_form_stored_once(nats_url: str) -> None:
    """``--also-publish-shared``: every Event also alone on ``events.<namespace>`` with its uid
    (``<uid>-<resourceVersion>`` once set) as ``Nats-Msg-Id``; a retry stores nothing twice."""
    events = [records.event(f"s-{i}", namespace=f"team-{i % 2}", seq=i) for i in range(5)]
    events[1]["metadata"]["resourceVersion"] = "17"
    listed = {"kind": "EventList", "apiVersion": "events.k8s.io/v1", "items": events[:4]}

    async def body() -> None:
        async with running_ingest(nats_url, also_publish_shared=True) as c:
            for _ in range(2):
                assert (await c.post("/events", listed))[0] == 200
                assert (await c.post("/events", events[4]))[0] == 200
            text = (await c.get("/metrics"))[1]
            assert 'activity_ingest_records_total{partition="shared",source="event"}' in text

    asyncio.run(body())
    messages = asyncio.run(stored(nats_url, "EVENTS"))
    shared = [(s, h["Nats-Msg-Id"], orjson.loads(d)) for s, d, h in messages if ".p" not in s]
    uid = [e["metadata"]["uid"] for e in events]
    assert shared == [
        (f"events.team-{i % 2}", uid[i] + ("-17" if i == 1 else ""), e)
        for i, e in enumerate(events)
    ]
    partitioned = [orjson.loads(d) for s, d, _ in messages if ".p" in s]
    assert sorted((e for doc in partitioned for e in doc["items"]), key=orjson.dumps) == sorted(
        events, key=orjson.dumps
    )


def test_event_lists_fit_a_small_events_stream(nats_url: str) -> None:
    """EVENTS made with max_msg_size 4096: the ingest reads it at start and cuts its lists to
    fit (an Event too large for a list of one travels alone); nothing gets 503."""
    events = [records.event(f"m-{i % 3}", seq=i) for i in range(30)]
    big = records.event("m-big", seq=99)
    big["note"] = ""
    big["note"] = "x" * (4096 - 512 - 10 - len(orjson.dumps(big)))  # just under the limit

    async def body() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().add_stream(
                api.StreamConfig(
                    name="EVENTS",
                    subjects=["events.>"],
                    max_msg_size=4096,
                    storage=api.StorageType.FILE,
                )
            )
        finally:
            await nc.close()
        async with running_ingest(nats_url) as c:
            listed = {"kind": "EventList", "apiVersion": "v1", "items": events}
            status, summary, _ = await c.post("/events", listed)
            assert status == 200, summary
            status, summary, _ = await c.post("/events", big)
            assert status == 200 and summary["messages"] == 1, summary

    asyncio.run(body())
    messages = asyncio.run(stored(nats_url, "EVENTS"))
    assert all(len(d) <= 4096 - 512 for _, d, _ in messages)
    docs = [orjson.loads(d) for _, d, _ in messages]
    lists = [doc for doc in docs if doc["kind"] == "EventList"]
    assert [doc for doc in docs if doc["kind"] != "EventList"] == [big]  # alone
    assert len(lists) > PARTITIONS and max(len(doc["items"]) for doc in lists) > 1
    assert sorted((e for doc in lists for e in doc["items"]), key=orjson.dumps) == sorted(
        events, key=orjson.dumps
    )


def test_end_to_end_through_a_worker_in_order_and_exactly_once(
    nats_url: str, tmp_path: Path
) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "deployments.yaml").write_text(records.policy())
    names = [f"app-{i}" for i in range(10)]
    seq = iter(range(10_000))
    requests = [
        event_list(
            [
                records.audit(name, verb=("create", "delete")[(r + k) % 2], seq=next(seq))
                for name in names
                for k in range(2)
            ]
        )
        for r in range(5)
    ]
    order = {rec["auditID"]: i for i, rec in enumerate(i for r in requests for i in r["items"])}

    async def run() -> MemorySink:
        sink = MemorySink()
        settings = Settings(
            nats_url=nats_url,
            partition_count=PARTITIONS,
            batch_max_age=0.05,
            health_addr="127.0.0.1:0",
            watch_interval=0.1,
            ack_wait=5.0,
        )
        worker = Worker(settings, [str(policy_dir)], sink=sink)
        await worker.start()
        try:
            published = 0
            async with running_ingest(nats_url, batch_items=7) as c:
                for request in requests:
                    status, summary, _ = await c.post("/audit", request)
                    assert status == 200, summary
                    published += summary["messages"]
                retry = await c.post("/audit", requests[2])  # all duplicates: stored once
                assert retry[0] == 200
            await wait_until(
                lambda: worker.pipeline.committed_messages >= published, what="all committed"
            )
        finally:
            await worker.stop()
        return sink

    sink = asyncio.run(run())
    rows = [orjson.loads(row) for row in sink.rows("activities")]
    origins = [row["spec"]["origin"]["id"] for row in rows]
    assert sorted(origins) == sorted(order), "every record stored exactly once"
    for name in names:
        mine = [order[row["spec"]["origin"]["id"]] for row in rows
                if row["spec"]["resource"]["name"] == name]  # fmt: skip
        assert mine == sorted(mine), f"{name}: records out of order"


def test_event_lists_through_a_worker_reach_k8s_events_and_activities_once(
    nats_url: str, tmp_path: Path
) -> None:
    """Events posted in lists travel batched on ``events.p<N>``; the worker stores every Event in
    ``k8s_events`` and makes its Activity once, in per-object order; a hostile item of a list
    costs itself alone, at the edge (ingest) and in the worker (a list published directly)."""
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "deployments.yaml").write_text(records.policy())
    names = [f"ev-{i}" for i in range(6)]
    seq = iter(range(10_000))
    requests = [
        [records.event(n, seq=next(seq)) for n in names for _ in range(2)] for _ in range(3)
    ]
    single = records.event("ev-0", seq=next(seq))
    edge = [records.event("ev-edge", seq=next(seq)) for _ in range(2)]
    inner = [records.event("ev-inner", seq=next(seq)) for _ in range(2)]
    hostile = ITEM_VALUES[1]  # a number
    direct = b'{"kind":"EventList","apiVersion":"v1","items":[%s,%s,%s]}' % (
        orjson.dumps(inner[0]),
        orjson.dumps(hostile),
        orjson.dumps(inner[1]),
    )
    everything = [e for r in requests for e in r] + [single, *edge, *inner]
    order = {e["metadata"]["uid"]: i for i, e in enumerate(everything)}

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        settings = Settings(
            nats_url=nats_url,
            clickhouse_url=f"chdb://{tmp_path / 'chdb'}",
            store_raw=True,
            partition_count=PARTITIONS,
            batch_max_age=0.05,
            health_addr="",
            watch_interval=60.0,
            policy_bucket="",
        )
        worker = Worker(settings, [str(policy_dir)])
        await worker.start()
        try:
            published = 0
            async with running_ingest(nats_url, batch_items=5) as c:
                for items in requests:
                    body = {"kind": "EventList", "apiVersion": "events.k8s.io/v1", "items": items}
                    status, summary, _ = await c.post("/events", body)
                    assert status == 200, summary
                    published += summary["messages"]
                status, summary, _ = await c.post("/events", single)
                assert status == 200 and summary["messages"] == 1
                published += 1
                body = {"kind": "List", "apiVersion": "v1", "items": [edge[0], hostile, edge[1]]}
                status, summary, _ = await c.post("/events", body)
                assert status == 200 and summary["rejectedCount"] == 1, summary
                published += summary["messages"]
                assert (await c.post("/events", body))[0] == 200  # a retry: stored once
            nc = await nats.connect(nats_url)
            try:
                ack = await nc.jetstream().publish("events.p0", direct)
                assert not ack.duplicate
            finally:
                await nc.close()
            published += 1
            await wait_until(
                lambda: worker.pipeline.committed_messages >= published, what="all committed"
            )
            sink = worker.sink
            assert sink is not None
            db = sink.database
            events = sink.query(f"SELECT uid, count() AS n FROM {db}.k8s_events FINAL GROUP BY uid")
            activities = sink.query(
                f"SELECT origin_id, count() AS n FROM {db}.activities FINAL GROUP BY origin_id"
            )
        finally:
            await worker.stop()
        return events, activities

    rows, activities = asyncio.run(run())
    assert sorted((r["uid"], int(r["n"])) for r in rows) == sorted((u, 1) for u in order)
    assert sorted((r["origin_id"], int(r["n"])) for r in activities) == sorted(
        (u, 1) for u in order
    )
    messages = asyncio.run(stored(nats_url, "EVENTS"))
    listed = [orjson.loads(d) for s, d, _ in messages if s != "events.p0" or d != direct]
    assert all((m["kind"], m["apiVersion"]) == ("EventList", "v1") for m in listed)
    assert max(len(m["items"]) for m in listed) > 1, "Events travel batched"
    assert all(len(m["items"]) <= 5 for m in listed)
    for subject, data, _ in messages:
        if data != direct:  # published straight to events.p0, whatever its items' partitions
            for item in orjson.loads(data)["items"]:
                assert subject == f"events.p{event_partition(item, PARTITIONS)}"
    stream = asyncio.run(stored(nats_url, "ACTIVITIES"))
    made = [orjson.loads(d) for _, d, _ in stream]
    for name in names:  # per-object order: the ACTIVITIES stream keeps the publish order
        mine = [order[a["spec"]["origin"]["id"]] for a in made
                if a["spec"]["resource"]["name"] == name]  # fmt: skip
        assert mine == sorted(mine) and len(mine) == (7 if name == "ev-0" else 6), name
    go = "json: cannot unmarshal number into Go value of type map[string]interface {}"
    held = asyncio.run(stored(nats_url, "ACTIVITY_DEAD_LETTER"))
    letters = [(decode_dead_letter(d), d) for _, d, _ in held]
    assert sorted((d["type"], d["error"]) for d, _ in letters) == [
        ("k8s-event", "EventList item 1 is a number, not an object"),  # the worker's
        ("k8s-event", f"item 1: {go}"),  # the ingest's
    ]
    assert [original_payload_bytes(d, data) for d, data in letters] == [b"42", b"42"]
