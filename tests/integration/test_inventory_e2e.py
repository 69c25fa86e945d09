"""Acceptance: an inventory timeline end to end, on a real nats-server and chDB.

A Circuit is created referencing a Provider that does not exist; the inventory controller's status
write says ``ProviderNotFound``; then the Provider is registered, the controller marks it and the
Circuit Ready. The audit records go through NATS to a worker (policies -> ACTIVITIES + chDB) and
to the reconciler sidecar, whose Events go back through NATS to the worker. The stored timeline
must read, in order: created the circuit; the circuit is not ready because the provider is not
found; registered the provider; (the provider is ready;) the circuit is ready.

It runs twice: with the bundled policies, and with the upstream inventory policies
(``../shared/real-policies/milo-os-inventory__*.yaml``, read where they are) instead of the
bundled inventory ones.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest

from processor.config import Settings
from processor.policy.bundled import bundled_policy_dir
from processor.reconciler.service import Reconciler
from processor.reconciler.settings import ReconcilerSettings
from processor.sink.chdb import ChdbSink
from processor.stream.server import NatsServer
from processor.worker.runner import Worker
from tests.integration import reconciler_records as rr

pytestmark = pytest.mark.integration

PARTITIONS = 4
SPEC = {
    "providerRef": {"name": "zayo"},
    "type": "ProviderCircuit",
    "circuitID": "ZY-778812",
    "aEnd": {"kind": "Site", "name": "ams1"},
    "zEnd": {"kind": "Port", "name": "fra1-pp-3"},
}
PROVIDER_SPEC = {"displayName": "Zayo", "type": "Transit"}
NOT_FOUND = [
    rr.condition("Ready", "False", "ProviderNotFound", 'Provider "zayo" not found'),
    rr.condition("EndpointsResolved", "True", "Accepted", ""),
]
READY = [rr.condition("Ready", "True", "Accepted", "")]
READY_BOTH = [*READY, rr.condition("EndpointsResolved", "True", "Accepted", "")]

#: What each line of the timeline must say (both policy sets): the acceptance story.
STORY = [
    ("Circuit", "audit", r"^alice created Circuit ams-fra-1 from provider zayo\b"),
    ("Circuit", "event", r'Circuit ams-fra-1 is not ready: Provider "zayo" not found$'),
    ("Provider", "audit", r"^alice registered Provider Zayo\b"),
    ("Provider", "event", r"Provider Zayo is ready$"),
    ("Circuit", "event", r"Circuit ams-fra-1 is ready$"),
]


@pytest.fixture
def nats_server(fresh_nats_server: NatsServer) -> NatsServer:
    """A nats-server of this test only: its streams hold nothing but this story."""
    return fresh_nats_server


def story_records() -> list[dict[str, Any]]:
    """The audit records, in the order the API server completes them."""
    label_patch = rr.audit(
        "Circuit",
        "ams-fra-1",
        verb="patch",
        seq=3,
        user=rr.CONTROLLER,
        request={"metadata": {"labels": {}}},
        response=rr.obj("Circuit", "ams-fra-1", spec=SPEC, conditions=NOT_FOUND, rv=12),
    )
    return [
        rr.create("Circuit", "ams-fra-1", SPEC, seq=1, rv=10),
        rr.status_patch("Circuit", "ams-fra-1", NOT_FOUND, seq=2, rv=11, spec=SPEC),
        label_patch,  # the controller's metadata patch: no activity, no transition
        rr.audit("Provider", "zayo", verb="get", seq=4, user=rr.CONTROLLER, code=404),
        rr.status_patch("Circuit", "ams-fra-1", NOT_FOUND, seq=32, rv=13, spec=SPEC),  # requeue
        rr.create("Provider", "zayo", PROVIDER_SPEC, seq=60, rv=20),
        rr.status_patch("Provider", "zayo", READY, seq=61, rv=21, spec=PROVIDER_SPEC),
        rr.status_patch("Circuit", "ams-fra-1", READY_BOTH, seq=62, rv=22, spec=SPEC),
    ]


def policy_paths(which: str, shared: Path | None) -> list[str]:
    bundled = bundled_policy_dir()
    if which == "bundled":
        return [str(bundled)]
    assert shared is not None
    upstream = sorted(shared.glob("milo-os-inventory__*.yaml"))
    assert len(upstream) == 12
    return [str(bundled / "kubernetes"), *map(str, upstream)]


def controller_events() -> list[dict[str, Any]]:
    """The Events a controller with the event recorder wired in emits for the same story."""
    return [
        rr.controller_event(
            "Circuit",
            "ams-fra-1",
            ready=False,
            reason="ProviderNotFound",
            note='Provider "zayo" not found',
            seq=2.03,
        ),
        rr.controller_event(
            "Provider", "zayo", ready=True, reason="Accepted", note="", seq=61.03, display="Zayo"
        ),
        rr.controller_event(
            "Circuit", "ams-fra-1", ready=True, reason="Accepted", note="", seq=62.03
        ),
    ]


async def run_story(
    url: str, paths: list[str], sink: ChdbSink, *, with_controller_events: bool = False
) -> Reconciler:
    tag = uuid.uuid4().hex[:8]
    worker = Worker(
        Settings(
            nats_url=url,
            partition_count=PARTITIONS,
            batch_max_age=0.05,
            health_addr="",
            policy_bucket="",
            consumer_name=f"e2e-{tag}",
            event_consumer_name=f"e2e-events-{tag}",
        ),
        paths,
        sink=sink,
    )
    # with the controller's own Events on their way, derived ones wait for them (grace)
    grace = 3600.0 if with_controller_events else 0.0
    reconciler = Reconciler(
        ReconcilerSettings(nats_url=url, partition_count=PARTITIONS, grace=grace, health_addr="")
    )
    await worker.start()
    await reconciler.start()
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for record in story_records():
            subject = rr.audit_subject(record, PARTITIONS)
            await js.publish(subject, rr.encode(record), headers={"Nats-Msg-Id": record["auditID"]})
        for event in controller_events() if with_controller_events else ():
            await js.publish("events.default", orjson.dumps(event))
        await wait_rows(sink, len(STORY))
        while with_controller_events and _sum(reconciler, "events_suppressed_total") < 3:
            await asyncio.sleep(0.05)
    finally:
        await nc.drain()
        await reconciler.stop()
        await worker.stop()
    return reconciler


def _sum(reconciler: Reconciler, name: str) -> float:
    return sum(
        s.value
        for metric in reconciler.metrics.registry.collect()
        for s in metric.samples
        if s.name == f"activity_reconciler_{name}"
    )


def stored(sink: ChdbSink) -> list[dict[str, Any]]:
    return sink.query(
        "SELECT resource_kind, resource_name, origin_type, summary, toString(timestamp) AS ts "
        "FROM audit.activities FINAL ORDER BY timestamp, origin_id"
    )


async def wait_rows(sink: ChdbSink, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while len(await asyncio.to_thread(stored, sink)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {count} activities: {stored(sink)}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("which", ["bundled", "upstream"])
def test_circuit_before_its_provider(
    which: str, nats_server: NatsServer, chdb_sink: ChdbSink, request: pytest.FixtureRequest
) -> None:
    shared = request.getfixturevalue("real_policies_dir") if which == "upstream" else None
    asyncio.run(run_story(nats_server.url, policy_paths(which, shared), chdb_sink))
    timeline = stored(chdb_sink)
    lines = [(r["resource_kind"], r["origin_type"], r["summary"]) for r in timeline]
    print(
        f"timeline ({which} policies):",
        *(f"  {r['ts']}  {r['summary']}" for r in timeline),
        sep="\n",
    )
    assert_story(lines)


def assert_story(lines: list[tuple[str, str, str]]) -> None:
    assert len(lines) == len(STORY), lines
    for (kind, origin, summary), (want_kind, want_origin, pattern) in zip(
        lines, STORY, strict=True
    ):
        assert (kind, origin) == (want_kind, want_origin), lines
        assert re.search(pattern, summary), (summary, pattern)


def test_controller_events_are_not_duplicated(nats_server: NatsServer, chdb_sink: ChdbSink) -> None:
    paths = policy_paths("bundled", None)
    reconciler = asyncio.run(
        run_story(nats_server.url, paths, chdb_sink, with_controller_events=True)
    )
    timeline = stored(chdb_sink)
    assert_story([(r["resource_kind"], r["origin_type"], r["summary"]) for r in timeline])
    assert _sum(reconciler, "events_suppressed_total") == 3
    # only the EndpointsResolved transition (no controller reports it) is left to publish
    assert _sum(reconciler, "events_published_total") == 0
    assert _sum(reconciler, "pending_events") == 1
