"""The reconciler against a real nats-server: derived Events, controller Events recognised,
restarts (of the reconciler and of the server) neither repeating nor losing a transition, and a
publish failure retried.

Each test runs its own nats-server (the streams then hold only the test's own records: a new
durable consumer delivers everything already in a stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import orjson
import pytest

from processor.reconciler.service import Reconciler
from processor.reconciler.settings import ReconcilerSettings
from processor.stream.server import NatsServer
from processor.stream.topology import ensure_streams
from tests.integration import reconciler_records as rr
from tests.integration.reconciler_tools import (
    LIFECYCLE_TYPES,
    PARTITIONS,
    controller_events_around_a_status_write,
    counter,
    derived,
    derived_types,
    lifecycle,
    pending,
    the_rest_published,
    total,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def nats_server(fresh_nats_server: NatsServer) -> NatsServer:
    """A nats-server of this test only (it may be restarted)."""
    return fresh_nats_server


def settings(url: str, **overrides: Any) -> ReconcilerSettings:
    base: dict[str, Any] = {
        "nats_url": url,
        "partition_count": PARTITIONS,
        "grace": 0.0,
        "health_addr": "127.0.0.1:0",
        "ack_wait": 5.0,
    }
    base.update(overrides)
    return ReconcilerSettings(**base)


class Cluster:
    """A NATS connection standing in for the API server's audit webhook and the controllers."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    async def audit(self, *records: dict[str, Any], batch: bool = False) -> None:
        if batch:
            subject = rr.audit_subject(records[0], PARTITIONS)
            body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(records)}
            await self.js.publish(subject, orjson.dumps(body))
            return
        for record in records:
            await self.js.publish(
                rr.audit_subject(record, PARTITIONS),
                rr.encode(record),
                headers={"Nats-Msg-Id": record["auditID"]},
            )

    async def upstream_audit(self, record: dict[str, Any]) -> None:
        await self.js.publish("audit.k8s.activity", rr.encode(record))

    async def controller_event(self, event: dict[str, Any]) -> None:
        await self.js.publish("events.default", orjson.dumps(event))

    async def events(self) -> list[dict[str, Any]]:
        """Every Event in the EVENTS stream, in stream order."""
        sub = await self.js.pull_subscribe("events.>", stream="EVENTS")
        found: list[dict[str, Any]] = []
        try:
            while True:
                try:
                    msgs = await sub.fetch(100, timeout=0.5)
                except TimeoutError:  # nats-py raises its own subclass or asyncio's
                    return found
                for msg in msgs:
                    found.append(orjson.loads(msg.data))
                    await msg.ack()
        finally:
            await sub.unsubscribe()


def run(server: NatsServer, scenario: Callable[[Cluster], Awaitable[None]]) -> None:
    """Run ``scenario`` with a connection to ``server`` (streams provisioned)."""

    async def main() -> None:
        nc = await nats.connect(server.url)
        await ensure_streams(nc.jetstream())
        cluster = Cluster(nc)
        try:
            await scenario(cluster)
        finally:
            await cluster.nc.drain()

    asyncio.run(main())


def test_lifecycle_events_in_the_upstream_shape(nats_server: NatsServer) -> None:
    async def scenario(cluster: Cluster) -> None:
        reconciler = Reconciler(settings(nats_server.url))
        await reconciler.start()
        try:
            first, second = lifecycle()
            await cluster.audit(*first)
            await cluster.audit(*second, batch=False)
            # noise: another group, a failed request, a read
            await cluster.upstream_audit(
                rr.audit("Circuit", "ams-fra-1", verb="get", seq=50, user=rr.CONTROLLER)
            )
            await wait_for(lambda: total(reconciler, "events_published_total") >= 4, "4 events")
        finally:
            await reconciler.stop()
        events = await cluster.events()
        got = derived(events)
        circuit = [e for e in got if e[0] == "ams-fra-1"]
        assert circuit == [
            (
                "ams-fra-1",
                "inventory.circuit.not_ready",
                "ProviderNotFound",
                'Provider "zayo" not found',
            ),
            ("ams-fra-1", "inventory.circuit.ready", "Accepted", ""),
            ("ams-fra-1", "inventory.circuit.endpoints_resolved", "Accepted", ""),
        ]
        assert [e for e in got if e[0] == "zayo"] == [
            ("zayo", "inventory.provider.ready", "Accepted", "")
        ]
        provider = next(e for e in events if e["regarding"]["name"] == "zayo")
        assert provider["metadata"]["annotations"]["inventory.miloapis.com/display-name"] == "Zayo"
        assert provider["metadata"]["namespace"] == "default"
        assert counter(reconciler, "events_suppressed_total", kind="Circuit") == 0
        assert reconciler.health is not None and reconciler.health.port > 0

    run(nats_server, scenario)


def test_controller_events_are_not_duplicated(nats_server: NatsServer) -> None:
    async def scenario(cluster: Cluster) -> None:
        reconciler = Reconciler(settings(nats_server.url, grace=3600.0))
        await reconciler.start()
        try:
            await controller_events_around_a_status_write(cluster, reconciler)
            assert total(reconciler, "events_suppressed_total") == 2
            assert total(reconciler, "events_published_total") == 0
        finally:
            await reconciler.stop()
        events = await cluster.events()
        assert derived(events) == []
        assert len(events) == 2  # the controller's own

    run(nats_server, scenario)


def test_restart_neither_repeats_nor_loses(nats_server: NatsServer) -> None:
    async def scenario(cluster: Cluster) -> None:
        first, second = lifecycle()
        # 1. the not-ready transition is derived and waits for its grace period; then a restart
        waiting = Reconciler(settings(nats_server.url, grace=3600.0))
        await waiting.start()
        try:
            await cluster.audit(*first)
            await wait_for(lambda: pending(waiting) == 1, "a pending event")
        finally:
            await waiting.stop()
        # 2. the server restarts too: the state bucket is on disk
        await cluster.nc.drain()
        nats_server.restart()
        nc = await nats.connect(nats_server.url)
        cluster.nc, cluster.js = nc, nc.jetstream()
        reconciler = Reconciler(settings(nats_server.url, grace=0.0))
        await reconciler.start()
        try:
            await wait_for(
                lambda: total(reconciler, "events_published_total") == 1, "the pending one"
            )
            # the same records again (a producer retry) and the rest of the story
            await cluster.upstream_audit(first[1])
            await cluster.audit(*second)
            await the_rest_published(reconciler)
        finally:
            await reconciler.stop()
        assert derived_types(await cluster.events()) == LIFECYCLE_TYPES

    run(nats_server, scenario)


def test_publish_failure_is_counted_and_retried(nats_server: NatsServer) -> None:
    async def scenario(cluster: Cluster) -> None:
        reconciler = Reconciler(settings(nats_server.url, grace=0.0, conditions=("Ready",)))
        await reconciler.start()
        try:
            await cluster.js.delete_stream("EVENTS")  # nothing listens on events.> any more
            first, _ = lifecycle()
            await cluster.audit(*first[:2])
            await wait_for(
                lambda: counter(reconciler, "errors_total", stage="publish") >= 1, "error"
            )
            assert total(reconciler, "events_published_total") == 0
            await ensure_streams(cluster.js)
            await wait_for(lambda: total(reconciler, "events_published_total") == 1, "the retry")
        finally:
            await reconciler.stop()
        assert [e[1] for e in derived(await cluster.events())] == ["inventory.circuit.not_ready"]

    run(nats_server, scenario)


def test_partitions_owned_by_another_reconciler_are_left_alone(nats_server: NatsServer) -> None:
    async def scenario(cluster: Cluster) -> None:
        first, _ = lifecycle()
        subject = rr.audit_subject(first[0], PARTITIONS)
        owned = int(subject.rsplit("p", 1)[1])
        others = ",".join(str(n) for n in range(PARTITIONS) if n != owned)
        reconciler = Reconciler(settings(nats_server.url, partitions=others))
        await reconciler.start()
        try:
            for record in first:
                await cluster.upstream_audit(record)  # the shared subject carries every partition
            await wait_for(
                lambda: counter(reconciler, "observations_total", result="foreign") == 3, "foreign"
            )
        finally:
            await reconciler.stop()
        assert derived(await cluster.events()) == []

    run(nats_server, scenario)
