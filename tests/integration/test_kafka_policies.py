"""Policy updates on the Kafka policy topic (tansu): ``activity policy apply|list|delete
--transport kafka`` and a worker's :class:`KafkaPolicyWatcher` hot-reloading, keeping the last
good set when an update does not compile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from processor.cli import main
from processor.kafka.broker import TansuBroker
from processor.kafka.policies import KafkaPolicyWatcher, publish_policies, read_policies
from processor.kafka.settings import KafkaSettings
from processor.kafka.topics import ensure_topics
from processor.kafka.worker import KafkaWorker
from processor.metrics import Metrics
from processor.sink.memory import MemorySink
from processor.translate import Output, Translator
from processor.worker.reload import PolicyReloader
from tests.integration import records
from tests.integration.kafka_worker_tools import kafka_settings as worker_settings
from tests.integration.kafka_worker_tools import produce, unique_topics

pytestmark = pytest.mark.integration


def kafka_settings(broker: TansuBroker) -> KafkaSettings:
    """Settings with topics of this test only (the broker is shared by the session)."""
    return unique_topics(broker.bootstrap, 2)


def cli(settings: KafkaSettings, *args: str) -> int:
    flags = ["--transport", "kafka", "--kafka-brokers", settings.brokers]
    return main(["policy", *args, *flags, "--kafka-policy-topic", settings.policy_topic])


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def reloads(metrics: Metrics, result: str) -> float:
    sample = metrics.registry.get_sample_value(
        "activity_processor_policy_reloads_total", {"source": "kafka", "result": result}
    )
    return sample or 0.0


def summary(translator: Translator) -> str:
    out = Output()
    translator.translate(orjson.dumps(records.audit("web", seq=1)), out)
    return str(out.activities[0]["spec"]["summary"])


def loaded_reloader(policy_dir: Path) -> PolicyReloader:
    """A reloader of the policy files, its first set loaded."""
    reloader = PolicyReloader([str(policy_dir)], (), 1 << 20, Metrics())
    reloader.load()
    return reloader


@contextlib.asynccontextmanager
async def watching(
    settings: KafkaSettings, reloader: PolicyReloader, interval: float = 0.1
) -> AsyncIterator[KafkaPolicyWatcher]:
    """``reloader`` following the policy topic, once synced; the watch stopped after."""
    watcher = KafkaPolicyWatcher(settings, reloader, interval=interval)
    watcher.start()
    try:
        await asyncio.wait_for(watcher.synced.wait(), 20)
        yield watcher
    finally:
        await watcher.stop()


def test_hot_reload_keeps_last_good_set(
    kafka_broker: TansuBroker, policy_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = kafka_settings(kafka_broker)
    good = tmp_path / "v2.yaml"
    good.write_text(records.policy(word="launched"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(records.policy(word="x").replace("audit.verb ==", "audit.verb == =="))
    invalid = orjson.dumps({"apiVersion": "activity.miloapis.com/v1alpha1"})  # no spec

    async def body() -> None:
        await ensure_topics(settings)
        metrics = Metrics()
        swapped: list[Translator] = []
        reloader = PolicyReloader([str(policy_dir)], (), 1 << 20, metrics, swapped.append)
        first = reloader.load().translator
        assert summary(first) == "alice created deployment web"
        watcher = KafkaPolicyWatcher(settings, reloader, interval=0.2)
        watcher.start()
        try:
            await asyncio.wait_for(watcher.synced.wait(), 20)
            assert not swapped  # an empty topic changes nothing
            # a file that does not compile is rejected by the CLI: nothing is written
            assert await asyncio.to_thread(cli, settings, "apply", "-f", str(bad)) == 1
            assert await read_policies(settings) == {}
            assert await asyncio.to_thread(cli, settings, "apply", "-f", str(good)) == 0
            await wait_for(lambda: len(swapped) == 1, "the applied policy")
            assert summary(swapped[-1]) == "alice launched deployment web"
            # an invalid update that reached the topic anyway: rejected, the last good set runs
            await publish_policies(settings, [("broken", invalid)])
            await wait_for(lambda: reloads(metrics, "rejected") == 1, "the rejection")
            assert len(swapped) == 1
            assert reloader.current is not None
            assert summary(reloader.current.translator) == "alice launched deployment web"
            assert "broken" in reloader.last_error
            # deleting it (a tombstone) makes the set valid again
            assert await asyncio.to_thread(cli, settings, "delete", "broken") == 0
            await wait_for(lambda: reloads(metrics, "accepted") == 2, "the set without it")
            assert reloader.last_error == ""
        finally:
            await watcher.stop()

        # a worker starting now reads the whole topic as one update
        later = loaded_reloader(policy_dir)
        async with watching(settings, later, interval=0.2):
            assert later.current is not None
            assert summary(later.current.translator) == "alice launched deployment web"

    asyncio.run(body())
    capsys.readouterr()
    assert cli(settings, "list", "-o", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["deployments"]


def test_a_kafka_worker_hot_reloads_from_the_topic(
    kafka_broker: TansuBroker, policy_dir: Path, tmp_path: Path
) -> None:
    """``activity run --transport kafka`` follows the topic: records after an apply use it."""
    settings = worker_settings(kafka_broker)
    kafka = settings.kafka()
    good = tmp_path / "v2.yaml"
    good.write_text(records.policy(word="launched"))
    sink = MemorySink()

    async def body() -> None:
        worker = KafkaWorker(settings, [str(policy_dir)], sink=sink)
        await worker.start()
        try:
            pipeline = worker.pipeline
            assert pipeline is not None and worker.policy_watcher is not None
            await produce(settings, "audit", [records.audit("one", seq=1)])
            await wait_for(lambda: pipeline.committed_records == 1, "the first record")
            assert await asyncio.to_thread(cli, kafka, "apply", "-f", str(good)) == 0
            await wait_for(lambda: reloads(worker.metrics, "accepted") == 1, "the reload")
            await produce(settings, "audit", [records.audit("two", seq=2)])
            await wait_for(lambda: pipeline.committed_records == 2, "the second record")
        finally:
            await worker.stop()

    asyncio.run(body())
    got = sorted(orjson.loads(row)["spec"]["summary"] for row in sink.rows("activities"))
    assert got == ["alice created deployment one", "alice launched deployment two"]


def test_policy_list_on_a_missing_topic_fails_cleanly(
    kafka_broker: TansuBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = kafka_settings(kafka_broker)
    assert cli(settings, "list") != 0
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err


def test_an_idle_watch_after_a_multi_record_batch_does_not_restart(
    kafka_broker: TansuBroker, policy_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """tansu's ListOffsets(latest) names the last batch's base offset + 1, short of the real end
    when that batch holds several records (docs/kafka.md): an idle watch must not take that for
    a topic created anew, restart and re-read the topic every interval."""
    settings = kafka_settings(kafka_broker)
    text = records.policy(word="launched")

    async def body() -> None:
        await ensure_topics(settings)
        # three policies written by a batching producer (not ours, which writes one record per
        # batch): one batch on the policy topic's partition
        value = orjson.dumps(yaml.safe_load(text))
        names = [f"p{i}" for i in range(3)]
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, linger_ms=100)
        await producer.start()
        try:
            sent = [
                await producer.send(settings.policy_topic, value, key=name.encode(), partition=0)
                for name in names
            ]
            assert len({(await f).offset for f in sent}) == 3
        finally:
            await producer.stop()
        reloader = loaded_reloader(policy_dir)
        async with watching(settings, reloader):
            assert sorted(reloader.kv_entries) == names
            await asyncio.sleep(1.0)  # ten idle intervals

    with caplog.at_level("WARNING", logger="processor.kafka.policies"):
        asyncio.run(body())
    restarts = [r.getMessage() for r in caplog.records if "restarting" in r.getMessage()]
    assert restarts == []


def test_a_policy_topic_created_anew_is_read_anew(
    kafka_broker: TansuBroker, policy_dir: Path
) -> None:
    """A policy topic deleted and created again (fewer records than the watcher had read): the
    watcher notices, reads the new topic from its start and applies exactly its contents."""
    settings = kafka_settings(kafka_broker)
    launched = orjson.dumps(yaml.safe_load(records.policy(word="launched")))

    async def body() -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        await ensure_topics(settings)
        await publish_policies(settings, [(f"old{i}", launched) for i in range(4)])
        reloader = loaded_reloader(policy_dir)
        async with watching(settings, reloader):
            assert sorted(reloader.kv_entries) == ["old0", "old1", "old2", "old3"]
            admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap)
            await admin.start()
            try:
                await admin.delete_topics([settings.policy_topic])
            finally:
                await admin.close()
            await ensure_topics(settings)
            await publish_policies(settings, [("new", launched)])
            await wait_for(lambda: sorted(reloader.kv_entries) == ["new"], "the new topic's set")

    asyncio.run(body())
