"""The reconciler on Kafka (tansu): the NATS reconciler's scenarios (tests/integration/
test_reconciler.py) with state in a Faust Table: derived Events in the upstream shape,
controller Events recognised, and a restart neither repeating nor losing a transition (the
unpublished Event recovered from the table's changelog).

Each test has its own topics and consumer group on the session's broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from processor.kafka.broker import TansuBroker
from processor.kafka.reconcile import KafkaReconciler
from processor.kafka.settings import KafkaSettings
from processor.kafka.topics import ensure_topics
from processor.reconciler.settings import ReconcilerSettings
from processor.subjects import audit_partition, audit_partition_key, event_partition
from tests.integration import reconciler_records as rr
from tests.integration.kafka_worker_tools import unique_topics
from tests.integration.reconciler_tools import (
    LIFECYCLE_TYPES,
    NOT_FOUND,
    PARTITIONS,
    READY,
    SPEC,
    controller_events_around_a_status_write,
    derived,
    derived_types,
    lifecycle,
    pending,
    the_rest_published,
    total,
    wait_for,
)

pytestmark = pytest.mark.integration


class Cluster:
    """A producer standing in for the API server's audit webhook and the controllers."""

    def __init__(self, kafka: KafkaSettings) -> None:
        from aiokafka import AIOKafkaProducer

        self.kafka = kafka
        self.producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")

    async def audit(self, *records: dict[str, Any]) -> None:
        for record in records:
            await self.producer.send_and_wait(
                self.kafka.audit_topic,
                rr.encode(record),
                key="/".join(audit_partition_key(record)).encode(),
                partition=audit_partition(record, PARTITIONS),
            )

    async def controller_event(self, event: dict[str, Any]) -> None:
        await self.producer.send_and_wait(
            self.kafka.event_topic,
            orjson.dumps(event),
            partition=event_partition(event, PARTITIONS),
        )

    async def events(self) -> list[dict[str, Any]]:
        """Every Event in the Events topic (partition by partition)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.kafka.bootstrap, group_id=None)
        await consumer.start()
        try:
            tps = [TopicPartition(self.kafka.event_topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            found: list[dict[str, Any]] = []
            for tp in tps:
                while await consumer.position(tp) < ends[tp]:
                    for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                        found.append(orjson.loads(record.value))
            return found
        finally:
            await consumer.stop()


def settings(**overrides: Any) -> ReconcilerSettings:
    base: dict[str, Any] = {
        "partition_count": PARTITIONS,
        "grace": 0.0,
        "health_addr": "127.0.0.1:0",
        "consumer_name": f"reconciler-{uuid.uuid4().hex[:8]}",
    }
    base.update(overrides)
    return ReconcilerSettings(**base)


def run(broker: TansuBroker, scenario: Callable[[Cluster], Awaitable[None]]) -> None:
    kafka = unique_topics(
        broker.bootstrap,
        PARTITIONS,
        # tansu's first group generation is 0, for which aiokafka sends no LeaveGroup on stop:
        # a restarted member waits for the old one's session to expire (kept short here)
        session_timeout=3.0,
        rebalance_timeout=3.0,
        heartbeat_interval=0.5,
    )

    async def main() -> None:
        await ensure_topics(kafka)
        cluster = Cluster(kafka)
        await cluster.producer.start()
        try:
            await scenario(cluster)
        finally:
            await cluster.producer.stop()

    asyncio.run(main())


def test_lifecycle_and_controller_events(kafka_broker: TansuBroker) -> None:
    async def scenario(cluster: Cluster) -> None:
        reconciler = KafkaReconciler(settings(grace=3600.0), cluster.kafka)
        await reconciler.start()
        try:
            second = await controller_events_around_a_status_write(cluster, reconciler)
            # the provider's transition has no controller Event: published when due
            reconciler.settings = dataclasses.replace(reconciler.settings, grace=0.0)
            await cluster.audit(*second[:2])
            await wait_for(lambda: total(reconciler, "events_published_total") == 1, "published")
            assert reconciler.health is not None and reconciler.health.port > 0
        finally:
            await reconciler.stop()
        events = await cluster.events()
        assert [e[:3] for e in derived(events)] == [
            ("zayo", "inventory.provider.ready", "Accepted")
        ]
        provider = next(e for e in events if e["regarding"]["name"] == "zayo")
        assert provider["metadata"]["annotations"]["inventory.miloapis.com/display-name"] == "Zayo"
        assert len(events) == 3  # the controller's two and the derived one

    run(kafka_broker, scenario)


def test_restart_neither_repeats_nor_loses(kafka_broker: TansuBroker) -> None:
    async def scenario(cluster: Cluster) -> None:
        first, second = lifecycle()
        group = settings(grace=3600.0)
        # 1. the not-ready transition is derived and waits for its grace period; then a restart
        waiting = KafkaReconciler(group, cluster.kafka)
        await waiting.start()
        try:
            await cluster.audit(*first)
            await wait_for(lambda: pending(waiting) == 1, "a pending event")
        finally:
            await waiting.stop()
        # 2. the same group again: the pending Event comes back from the table's changelog
        reconciler = KafkaReconciler(
            settings(grace=0.0, consumer_name=group.consumer_name), cluster.kafka
        )
        await reconciler.start()
        try:
            await wait_for(
                lambda: total(reconciler, "events_published_total") == 1, "the pending one"
            )
            # the same record again (a producer retry) and the rest of the story
            await cluster.audit(first[1], *second)
            await the_rest_published(reconciler)
        finally:
            await reconciler.stop()
        assert derived_types(await cluster.events()) == LIFECYCLE_TYPES

    run(kafka_broker, scenario)


def ready(events: list[dict[str, Any]]) -> set[str]:
    """Names of the objects with a derived ready Event."""
    return {name for name, etype, _, _ in derived(events) if etype.endswith(".ready")}


def test_two_reconcilers_share_the_objects_and_hand_them_over(kafka_broker: TansuBroker) -> None:
    """Two reconcilers in one group split the partitions; when one leaves, the other takes its
    objects over with their state (from the table's changelog) and their audit positions: every
    transition is reported, none twice as two different Events."""
    names = [f"c-{i}" for i in range(8)]

    def patch(name: str, conditions: list[dict[str, Any]], seq: float, rv: int) -> Any:
        return rr.status_patch("Circuit", name, conditions, seq=seq, rv=rv, spec=SPEC)

    async def scenario(cluster: Cluster) -> None:
        group = settings()
        first = KafkaReconciler(dataclasses.replace(group, instance="first"), cluster.kafka)
        second = KafkaReconciler(dataclasses.replace(group, instance="second"), cluster.kafka)
        await first.start()
        await second.start()
        both = (first, second)
        try:
            await wait_for(
                lambda: (
                    all(r.reading for r in both) and sum(len(r.reading) for r in both) == PARTITIONS
                ),
                "the partitions split between the two",
            )
            for i, name in enumerate(names):
                await cluster.audit(
                    rr.create("Circuit", name, SPEC, seq=i, rv=10),
                    patch(name, [NOT_FOUND], seq=i + 1, rv=11),
                )
            published = lambda: sum(total(r, "events_published_total") for r in both)  # noqa: E731
            await wait_for(lambda: published() == len(names), "8 not-ready events")
            moved = [n for n in names if not first.owns("Circuit", n)]
            assert moved  # the second one had some
        finally:
            await second.stop()
        try:
            await wait_for(lambda: first.reading == set(range(PARTITIONS)), "the handover")
            for i, name in enumerate(names):
                # the same condition again (a requeue), then ready: one new Event per object
                await cluster.audit(
                    patch(name, [NOT_FOUND], seq=i + 30, rv=12),
                    patch(name, [READY], seq=i + 40, rv=13),
                )
            deadline = time.monotonic() + 30
            while len(ready(events := await cluster.events())) < len(names):
                assert time.monotonic() < deadline, "timed out waiting for 8 ready events"
                await asyncio.sleep(0.2)
        finally:
            await first.stop()
        events = await cluster.events()
        # every transition reported; an Event published again after a rebalance (at least once,
        # as Faust's recovery replays the changelog) is the same Event: the same uid, so the
        # same Activity, which ClickHouse collapses
        by_uid: dict[str, tuple[str, str]] = {}
        for event in events:
            annotations = event["metadata"]["annotations"]
            if "activity.miloapis.com/derived-by" not in annotations:
                continue
            key = (event["regarding"]["name"], annotations["inventory.miloapis.com/event-type"])
            assert by_uid.setdefault(event["metadata"]["uid"], key) == key
        want = sorted((n, f"inventory.circuit.{t}") for n in names for t in ("not_ready", "ready"))
        assert sorted(by_uid.values()) == want

    run(kafka_broker, scenario)
