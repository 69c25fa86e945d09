"""``activity watch`` on a real nats-server: client-side filter, tenant subjects, resume."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import nats
import orjson
import pytest
from nats.errors import NoServersError

from processor.query.errors import QueryError
from processor.query.watch import Watched, WatchSpec, watch
from processor.stream.server import NatsServer, NatsServerError, nats_server_binary
from processor.stream.topology import ensure_streams
from processor.subjects import activity_subject
from tests.integration.conftest import missing_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        nats_server_binary()
    except NatsServerError as exc:
        missing_server(f"nats-server is not installed: {exc}")
    srv = NatsServer(tmp_path_factory.mktemp("nats"))
    url = srv.start()
    try:
        yield url
    finally:
        srv.stop()


def activity(i: int, actor: str, kind: str, tenant: tuple[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "Activity",
        "metadata": {"name": f"act-{i}", "creationTimestamp": f"2026-11-20T10:00:{i:02d}.000Z"},
        "spec": {"summary": f"{actor} changed {kind} x-{i}", "changeSource": "human",
                 "actor": {"name": actor, "type": "user"},
                 "resource": {"apiGroup": "apps", "kind": kind, "name": f"x-{i}"},
                 "tenant": {"type": tenant[0], "name": tenant[1]},
                 "origin": {"type": "audit", "id": f"o-{i}"}},
    }  # fmt: skip


ACTIVITIES = [
    activity(1, "alice", "Deployment", ("Organization", "acme")),
    activity(2, "bob", "Deployment", ("Organization", "acme")),
    activity(3, "alice", "Pod", ("Organization", "globex")),
    activity(4, "alice", "Deployment", ("", "")),
    activity(5, "carol", "Deployment", ("Organization", "acme")),
]


async def _publish(url: str, items: list[dict[str, Any]]) -> list[int]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js)
        seqs = []
        for item in items:
            ack = await js.publish(activity_subject(item), orjson.dumps(item))
            seqs.append(ack.seq)
        return seqs
    finally:
        await nc.close()


async def _collect(url: str, spec: WatchSpec, limit: int) -> list[Watched]:
    async def run() -> list[Watched]:
        return [item async for item in watch(url, spec, limit)]

    return await asyncio.wait_for(run(), timeout=20)


@pytest.fixture(scope="module")
def sequences(server: str) -> list[int]:
    return asyncio.run(_publish(server, ACTIVITIES))


def test_filter_and_resume(server: str, sequences: list[int]) -> None:
    spec = WatchSpec(filter="spec.actor.name == 'alice' && spec.resource.kind == 'Deployment'",
                     since=sequences[0])  # fmt: skip
    got = asyncio.run(_collect(server, spec, 2))
    assert [w.activity["metadata"]["name"] for w in got] == ["act-1", "act-4"]
    assert [w.sequence for w in got] == [sequences[0], sequences[3]]
    assert got[0].activity["metadata"]["resourceVersion"] == str(sequences[0])
    resumed = asyncio.run(_collect(server, WatchSpec(since=sequences[3]), 2))
    assert [w.sequence for w in resumed] == sequences[3:5]  # inclusive


def test_tenant_subject_and_actor(server: str, sequences: list[int]) -> None:
    spec = WatchSpec(since=1, tenant_type="organization", tenant_name="acme", actor="carol")
    assert spec.subject() == "activities.Organization.acme.>"
    got = asyncio.run(_collect(server, spec, 1))
    assert got[0].activity["metadata"]["name"] == "act-5"


def test_live_activities_arrive(server: str, sequences: list[int]) -> None:
    async def scenario() -> list[Watched]:
        spec = WatchSpec(filter="spec.actor.name == 'dave'")  # only new activities
        task = asyncio.create_task(_collect(server, spec, 1))
        while not task.done():  # publish until the consumer (created concurrently) sees one
            await _publish(server, [activity(9, "dave", "Pod", ("Project", "p"))])
            await asyncio.wait({task}, timeout=0.2)
        return await task

    got = asyncio.run(scenario())
    assert got[0].activity["metadata"]["name"] == "act-9"
    assert got[0].sequence > sequences[-1]


def test_invalid_filter_is_rejected_before_connecting() -> None:
    with pytest.raises(QueryError, match="not supported"):
        WatchSpec(filter="spec.summary.matches('x')").compile()
    with pytest.raises(QueryError, match="needs --tenant-type"):
        WatchSpec(tenant_name="acme").subject()


def test_unreachable_server_fails_fast() -> None:
    with pytest.raises(NoServersError):
        asyncio.run(_collect("nats://127.0.0.1:1", WatchSpec(), 1))
