"""The reconciler on Kafka (tansu): the NATS reconciler's scenarios (tests/integration/
test_reconciler.py) with state in a Faust Table: derived Events in the upstream shape,
controller Events recognised, and a restart neither repeating nor losing a transition (the
unpublished Event recovered from the table's changelog).

Each test has its own topics and consumer group on the session's broker.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from processor.bench.local import free_port
from processor.kafka.broker import TansuBroker
from processor.kafka.reconcile import KafkaReconciler, TableStateStore, object_partition
from processor.kafka.settings import KafkaSettings
from processor.kafka.topics import ensure_topics
from processor.reconciler.settings import ReconcilerSettings
from processor.subjects import audit_partition, audit_partition_key, event_partition
from tests.integration import reconciler_records as rr
from tests.integration.fault_tools import kill, log_on_failure
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
        """Write ``records`` in order, in as few batches as the producer makes of them (so a
        reconciler reads them in one fetch and writes their states in one batch each)."""
        sent = []
        for record in records:
            sent.append(
                await self.producer.send(
                    self.kafka.audit_topic,
                    rr.encode(record),
                    key="/".join(audit_partition_key(record)).encode(),
                    partition=audit_partition(record, PARTITIONS),
                )
            )
        await asyncio.gather(*sent)

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


def test_recovery_reads_the_whole_last_batch_of_the_changelog(kafka_broker: TansuBroker) -> None:
    """The table is recovered up to the last record of the changelog, also when that record
    is not the first of its batch: tansu reports a partition's end offset as the last batch's
    first offset + 1, and Faust's recovery stopped there (the Event a later record of the
    batch marked published was published again). Two objects of one partition wait with a
    pending Event; then one batch holds the first unchanged and the second published, as a
    reconciler writes them after a publish. A new reconciler must publish the first only."""
    x, y = (
        "rb-x",
        next(
            f"rb-{i}"
            for i in range(100)
            if object_partition("Circuit", f"rb-{i}", PARTITIONS)
            == object_partition("Circuit", "rb-x", PARTITIONS)
            and f"rb-{i}" != "rb-x"
        ),
    )

    async def scenario(cluster: Cluster) -> None:
        group = settings(grace=3600.0)
        waiting = KafkaReconciler(group, cluster.kafka)
        await waiting.start()
        try:
            for i, name in enumerate((x, y)):
                await cluster.audit(
                    rr.create("Circuit", name, SPEC, seq=i, rv=10),
                    circuit(name, [NOT_FOUND], seq=i + 1, rv=11),
                )
            await wait_for(lambda: pending(waiting) == 2, "two pending events")
        finally:
            await waiting.stop()
        store = waiting.store
        assert isinstance(store, TableStateStore)
        states = {name: store.table.data[f"circuit.{name}".encode()] for name in (x, y)}
        published = orjson.loads(states[y])
        published["pending"] = []
        partition = object_partition("Circuit", x, PARTITIONS)
        sent = [
            await cluster.producer.send(store.topic, value, key=key, partition=partition)
            for key, value in (
                (f"circuit.{x}".encode(), states[x]),
                (f"circuit.{y}".encode(), orjson.dumps(published)),
            )
        ]
        offsets = [(await future).offset for future in sent]
        assert offsets[1] == offsets[0] + 1
        reconciler = KafkaReconciler(
            settings(grace=0.0, consumer_name=group.consumer_name), cluster.kafka
        )
        await reconciler.start()
        try:
            await wait_for(lambda: total(reconciler, "events_published_total") >= 1, "x's Event")
        finally:
            await reconciler.stop()
        # both were loaded together after the recovery, so both would be published together
        assert derived_types(await cluster.events()) == [(x, "inventory.circuit.not_ready")]

    run(kafka_broker, scenario)


def circuit(name: str, conditions: list[dict[str, Any]], seq: float, rv: int) -> dict[str, Any]:
    """A status write of circuit ``name`` (rv: its resourceVersion)."""
    return rr.status_patch("Circuit", name, conditions, seq=seq, rv=rv, spec=SPEC)


def test_scale_out_and_in_publish_every_event_once(kafka_broker: TansuBroker) -> None:
    """A second reconciler joins the group (scale out) and takes half the objects over with
    their state; controller Events reach whoever owns their object through the forwarder;
    then it leaves gracefully (scale in) with Events still waiting for their grace period, and
    the first takes them over. Every transition is published exactly once: no uid twice."""
    names = [f"c-{i}" for i in range(8)]

    async def scenario(cluster: Cluster) -> None:
        group = settings()
        first = KafkaReconciler(dataclasses.replace(group, instance="first"), cluster.kafka)
        # the second's Events wait (grace) until it leaves, so the first must publish them
        second = KafkaReconciler(
            dataclasses.replace(group, instance="second", grace=3600.0), cluster.kafka
        )
        await first.start()
        try:
            await wait_for(lambda: first.reading == set(range(PARTITIONS)), "the first alone")
            await cluster.audit(
                *[rr.create("Circuit", name, SPEC, seq=i, rv=10) for i, name in enumerate(names)],
                *[circuit(name, [NOT_FOUND], seq=i + 1, rv=11) for i, name in enumerate(names)],
            )
            await wait_for(lambda: total(first, "events_published_total") == 8, "8 not-ready")
            # scale out
            await second.start()
            try:
                await wait_for(
                    lambda: (
                        bool(first.reading and second.reading)
                        and len(first.reading | second.reading) == PARTITIONS
                    ),
                    "the partitions split between the two",
                )
                moved = sorted(n for n in names if second.owns("Circuit", n))
                assert moved and len(moved) < len(names)
                covered = moved[::2]  # the controller reports these itself
                for i, name in enumerate(names):
                    # the same condition again (a requeue: no Event), then ready
                    await cluster.audit(
                        circuit(name, [NOT_FOUND], seq=i + 30, rv=12),
                        circuit(name, [READY], seq=i + 40, rv=13),
                    )
                    if name in covered:
                        await cluster.controller_event(
                            rr.controller_event(
                                "Circuit", name, ready=True, reason="Accepted", note="",
                                seq=i + 40.05,
                            )
                        )  # fmt: skip
                kept = len(names) - len(moved)
                await wait_for(
                    lambda: (
                        total(first, "events_published_total") == 8 + kept
                        and pending(second) == len(moved) - len(covered)
                        and total(second, "events_suppressed_total") == len(covered)
                    ),
                    "the first's ready Events, the second's waiting or suppressed",
                )
            finally:
                await second.stop()  # scale in
            await wait_for(lambda: first.reading == set(range(PARTITIONS)), "the handover")
            await wait_for(
                lambda: total(first, "events_published_total") == len(names) * 2 - len(covered),
                "the second's waiting Events published by the first",
            )
            for i, name in enumerate(names):
                await cluster.audit(circuit(name, [NOT_FOUND], seq=i + 60, rv=14))
            await wait_for(
                lambda: total(first, "events_published_total") == len(names) * 3 - len(covered),
                "8 not-ready again",
            )
        finally:
            await first.stop()
        events = await cluster.events()
        uids = [uid for uid, _ in derived_uids(events)]
        assert len(uids) == len(set(uids)), "an Event was published twice"
        want = [(n, "inventory.circuit.not_ready") for n in names] * 2
        want += [(n, "inventory.circuit.ready") for n in names if n not in covered]
        assert derived_types(events) == sorted(want)

    run(kafka_broker, scenario)


def derived_uids(events: list[dict[str, Any]]) -> list[tuple[str, tuple[str, str]]]:
    """(uid, (object, event type)) of each derived Event."""
    found = []
    for event in events:
        annotations = event["metadata"]["annotations"]
        if "activity.miloapis.com/derived-by" in annotations:
            key = (event["regarding"]["name"], annotations["inventory.miloapis.com/event-type"])
            found.append((event["metadata"]["uid"], key))
    return found


def reconciler_process(kafka: KafkaSettings, group: str, log: Path) -> subprocess.Popen[bytes]:
    """``activity reconcile --transport kafka`` in group ``group`` (instance "doomed")."""
    cmd = [
        sys.executable, "-m", "processor", "reconcile", "--transport", "kafka",
        "--kafka-brokers", kafka.brokers, "--kafka-audit-topic", kafka.audit_topic,
        "--kafka-event-topic", kafka.event_topic, "--partition-count", str(PARTITIONS),
        "--consumer-name", group, "--grace", "0", "--instance", "doomed",
        "--health-addr", f"127.0.0.1:{free_port()}", "--log-level", "WARNING",
    ]  # fmt: skip
    env = dict(os.environ, ACTIVITY_KAFKA_SESSION_TIMEOUT=str(kafka.session_timeout))
    with open(log, "ab") as err:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)


def test_kill_9_repeats_an_event_only_with_its_uid(
    kafka_broker: TansuBroker, tmp_path: Path
) -> None:
    """A reconciler process killed with SIGKILL while transitions stream in: the survivor takes
    its objects over from the table and their input from the stored positions. No transition
    is lost; one the killed process published but had not yet recorded as published is
    published again by the survivor, with the same uid (at least once: the same Activity)."""
    names = [f"k-{i}" for i in range(16)]
    rounds = 6  # round r: not ready (even r) or ready (odd r)
    log = tmp_path / "reconciler.log"

    def round_records(r: int) -> list[dict[str, Any]]:
        out = []
        for i, name in enumerate(names):
            seq = 100.0 * r + i
            if r == 0:
                out.append(rr.create("Circuit", name, SPEC, seq=seq, rv=10))
            out.append(circuit(name, [READY if r % 2 else NOT_FOUND], seq=seq + 0.5, rv=11 + r))
        return out

    async def scenario(cluster: Cluster) -> None:
        group = settings(instance="survivor")
        survivor = KafkaReconciler(group, cluster.kafka)
        await survivor.start()
        doomed = reconciler_process(cluster.kafka, group.consumer_name, log)
        try:
            with log_on_failure(log):
                await wait_for(
                    lambda: 0 < len(survivor.reading) < PARTITIONS, "the doomed one's share", 60
                )
                for r in range(3):
                    await cluster.audit(*round_records(r))

                async def published() -> int:
                    return len({uid for uid, _ in derived_uids(await cluster.events())})

                while await published() < 2 * len(names):  # both publish
                    await asyncio.sleep(0.1)
                await cluster.audit(*round_records(3))
                await kill(doomed)  # while it applies and publishes round 3
                await wait_for(lambda: survivor.reading == set(range(PARTITIONS)), "takeover")
                for r in range(4, rounds):
                    await cluster.audit(*round_records(r))
                while await published() < rounds * len(names):
                    await asyncio.sleep(0.2)
        finally:
            if doomed.poll() is None:
                await kill(doomed)
            await survivor.stop()
        events = derived_uids(await cluster.events())
        by_uid: dict[str, tuple[str, str]] = {}
        for uid, key in events:
            assert by_uid.setdefault(uid, key) == key  # a repeat is the same Event
        kinds = ("not_ready", "ready")
        want = [(n, f"inventory.circuit.{kinds[r % 2]}") for n in names for r in range(rounds)]
        assert sorted(by_uid.values()) == sorted(want)  # none lost, none derived twice
        repeats = len(events) - len(by_uid)
        print(f"kill -9: {repeats} Events published again with their uid")

    run(kafka_broker, scenario)
