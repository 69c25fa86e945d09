"""What the reconciler tests share (NATS in test_reconciler.py, Kafka in
test_kafka_reconciler.py, and tests/bench/reconciler_recovery.py): the Circuit lifecycle, the
metric readers, and the controller-Event scenario both transports must pass alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from processor.reconciler.service import Reconciler
from tests.integration import reconciler_records as rr

PARTITIONS = 4
NOT_FOUND = rr.condition("Ready", "False", "ProviderNotFound", 'Provider "zayo" not found')
READY = rr.condition("Ready", "True", "Accepted", "")
SPEC = {
    "providerRef": {"name": "zayo"},
    "type": "ProviderCircuit",
    "aEnd": {"kind": "Site", "name": "ams1"},
    "zEnd": {"kind": "Port", "name": "fra1-pp-3"},
}


class Cluster(Protocol):
    """A transport's test cluster: writes audit records and controller Events."""

    async def audit(self, *records: dict[str, Any]) -> None: ...

    async def controller_event(self, event: dict[str, Any]) -> None: ...


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def counter(reconciler: Reconciler, name: str, **labels: str) -> float:
    value = reconciler.metrics.registry.get_sample_value(f"activity_reconciler_{name}", labels)
    return value or 0.0


def pending(reconciler: Reconciler) -> float:
    return counter(reconciler, "pending_events")


def total(reconciler: Reconciler, name: str) -> float:
    """Sum of a labelled counter over all its label values."""
    found = 0.0
    for metric in reconciler.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == f"activity_reconciler_{name}":
                found += sample.value
    return found


def derived(events: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(name of the object, event type, condition reason, note) of the reconciler's Events."""
    out = []
    for event in events:
        annotations = event["metadata"]["annotations"]
        if "activity.miloapis.com/derived-by" in annotations:
            out.append(
                (
                    event["regarding"]["name"],
                    annotations["inventory.miloapis.com/event-type"],
                    annotations["inventory.miloapis.com/condition-reason"],
                    event["note"],
                )
            )
    return out


#: (object name, event type) of every Event the whole :func:`lifecycle` derives, sorted.
LIFECYCLE_TYPES = sorted(
    [
        ("ams-fra-1", "inventory.circuit.not_ready"),
        ("zayo", "inventory.provider.ready"),
        ("ams-fra-1", "inventory.circuit.ready"),
        ("ams-fra-1", "inventory.circuit.endpoints_resolved"),
    ]
)


def derived_types(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(object name, event type) of the reconciler's Events, sorted."""
    return sorted((name, etype) for name, etype, _, _ in derived(events))


async def the_rest_published(reconciler: Reconciler) -> None:
    """Wait until all four lifecycle Events are published and a stale record was seen (the
    restart tests write one record again, as a producer retry does)."""
    await wait_for(lambda: total(reconciler, "events_published_total") == 4, "the rest")
    await wait_for(lambda: counter(reconciler, "observations_total", result="stale") >= 1, "stale")


def lifecycle(seq: float = 0.0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(circuit created and not ready, provider registered and circuit ready) records."""
    first = [
        rr.create("Circuit", "ams-fra-1", SPEC, seq=seq + 1, rv=10),
        rr.status_patch("Circuit", "ams-fra-1", [NOT_FOUND], seq=seq + 2, rv=11, spec=SPEC),
        # the controller requeues 30 s later: same reason, no new Event
        rr.status_patch("Circuit", "ams-fra-1", [NOT_FOUND], seq=seq + 32, rv=12, spec=SPEC),
    ]
    second = [
        rr.create(
            "Provider", "zayo", {"displayName": "Zayo", "type": "Transit"}, seq=seq + 40, rv=20
        ),
        rr.status_patch("Provider", "zayo", [READY], seq=seq + 41, rv=21),
        rr.status_patch(
            "Circuit",
            "ams-fra-1",
            [READY, rr.condition("EndpointsResolved", "True", "Accepted")],
            seq=seq + 42,
            rv=22,
            spec=SPEC,
        ),
    ]
    return first, second


async def controller_events_around_a_status_write(
    cluster: Cluster, reconciler: Reconciler
) -> list[dict[str, Any]]:
    """The controller's Event arrives before the audit record of its status write (the first
    transition), then after it (the ready one, while the derived Event waits for its grace
    period, which must be long): the reconciler suppresses both. Returns the lifecycle's second
    part (the provider registered and the circuit ready), not yet written."""
    await cluster.controller_event(
        rr.controller_event(
            "Circuit", "ams-fra-1", ready=False, reason="ProviderNotFound",
            note='Provider "zayo" not found', seq=2.03,
        )
    )  # fmt: skip
    await wait_for(lambda: total(reconciler, "controller_events_total") == 1, "the mark")
    first, second = lifecycle()
    await cluster.audit(*first)
    await wait_for(lambda: total(reconciler, "events_suppressed_total") == 1, "suppression")
    ready = rr.status_patch("Circuit", "ams-fra-1", [READY], seq=42, rv=22, spec=SPEC)
    await cluster.audit(ready)
    await wait_for(lambda: pending(reconciler) == 1, "a pending event")
    await cluster.controller_event(
        rr.controller_event(
            "Circuit", "ams-fra-1", ready=True, reason="Accepted", note="", seq=42.05
        )
    )
    await wait_for(lambda: pending(reconciler) == 0, "the pending event dropped")
    return second
