"""Policy updates on Kafka: the compacted policy topic, as the NATS KV bucket is on NATS.

One record per policy: key the policy name, value the policy's JSON; a tombstone (no value)
deletes it. ``activity policy apply|list|delete --transport kafka`` write and read the topic
(:func:`publish_policies`, :func:`delete_policies`, :func:`read_policies`); every Kafka worker
follows it with a :class:`KafkaPolicyWatcher`, which feeds the same
:class:`~processor.worker.reload.PolicyReloader` as the NATS bucket does: the whole topic read at
start is applied as one update, then each record as it comes; an update whose set does not
compile is rejected and the running set stays (last good set).

Every worker must see every update, so the watcher is not in a consumer group (a group would
split the topic's partitions between the workers): it assigns itself every partition and reads
from the beginning. tansu never compacted a topic in our measurements (issue 27), so a worker
reads every update ever applied; with one record per applied policy that stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from processor.errors import ProcessorError
from processor.kafka.settings import KafkaSettings
from processor.worker.reload import PolicyReloader

__all__ = [
    "KafkaPolicyWatcher",
    "PolicyTopicError",
    "delete_policies",
    "publish_policies",
    "read_policies",
]

log = logging.getLogger(__name__)

SOURCE = "kafka"


class PolicyTopicError(ProcessorError):
    """The policy topic could not be read or written."""


async def publish_policies(
    settings: KafkaSettings, items: Iterable[tuple[str, bytes | None]]
) -> int:
    """Write ``(name, value)`` records (``None``: a tombstone) and wait for every ack.

    Returns:
        How many records were written.

    Raises:
        PolicyTopicError: the brokers are unreachable or a write failed.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, acks="all", request_timeout_ms=15_000
    )
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        raise PolicyTopicError(f"cannot reach Kafka at {settings.brokers}: {exc}") from exc
    written = 0
    try:
        for name, value in items:
            await producer.send_and_wait(settings.policy_topic, key=name.encode(), value=value)
            written += 1
    except KafkaError as exc:
        raise PolicyTopicError(f"writing to {settings.policy_topic}: {exc}") from exc
    finally:
        await producer.stop()
    return written


async def delete_policies(settings: KafkaSettings, names: Iterable[str]) -> int:
    """Write a tombstone for each name (see :func:`publish_policies`)."""
    return await publish_policies(settings, ((name, None) for name in names))


async def read_policies(
    settings: KafkaSettings, timeout: float = 15.0
) -> dict[str, tuple[int, bytes]]:
    """The policies in the topic now: name -> (offset of its last record, value).

    Raises:
        PolicyTopicError: the brokers are unreachable or the topic cannot be read.
    """
    reader = _TopicReader(settings)
    try:
        await reader.open()
        entries: dict[str, tuple[int, bytes]] = {}
        await asyncio.wait_for(reader.read_to_end(entries), timeout)
        return entries
    except TimeoutError as exc:
        raise PolicyTopicError(f"reading {settings.policy_topic} timed out") from exc
    finally:
        await reader.close()


class _TopicReader:
    """Every partition of the policy topic, from the beginning, outside any consumer group."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.consumer: Any = None
        self.partitions: list[Any] = []

    async def open(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.errors import KafkaError

        topic = self.settings.policy_topic
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await self.consumer.start()
            found = self.consumer.partitions_for_topic(topic)
            if not found:  # refresh the metadata once: a topic created a moment ago
                await self.consumer.topics()
                found = self.consumer.partitions_for_topic(topic)
        except KafkaError as exc:
            raise PolicyTopicError(f"cannot reach Kafka at {self.settings.brokers}: {exc}") from exc
        if not found:
            raise PolicyTopicError(f"topic {topic} does not exist (run `activity migrate`)")
        self.partitions = [TopicPartition(topic, p) for p in sorted(found)]
        self.consumer.assign(self.partitions)
        await self.consumer.seek_to_beginning(*self.partitions)

    async def end_offsets(self) -> dict[Any, int]:
        return dict(await self.consumer.end_offsets(self.partitions))

    async def read_to_end(self, entries: dict[str, tuple[int, bytes]]) -> None:
        """Apply every record up to the current end offsets to ``entries``."""
        ends = await self.end_offsets()
        while [tp for tp, at in (await self.positions()).items() if at < ends[tp]]:
            self.apply(await self.consumer.getmany(timeout_ms=200), entries)

    async def positions(self) -> dict[Any, int]:
        return {tp: await self.consumer.position(tp) for tp in self.partitions}

    def apply(self, batches: dict[Any, list[Any]], entries: dict[str, tuple[int, bytes]]) -> int:
        """Apply fetched records to ``entries``; returns how many there were."""
        count = 0
        for records in batches.values():
            for record in records:
                count += 1
                if record.key is None:
                    continue
                name = record.key.decode("utf-8", "replace")
                if record.value is None:
                    entries.pop(name, None)
                else:
                    entries[name] = (record.offset, record.value)
        return count

    async def close(self) -> None:
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
            self.consumer = None


class KafkaPolicyWatcher:
    """Follows the policy topic and hands each change to a :class:`PolicyReloader`.

    The whole topic as read at start is one update (as the NATS bucket's initial values are),
    applied when it differs from the running set; after that every fetched batch of records is
    one update of the topic's current contents (a later record fixing a rejected one makes the
    set valid again). A failure (brokers down, topic
    missing) is logged and the watch restarts from the beginning after ``interval`` seconds,
    which also re-reads a topic that was deleted and created again.

    Args:
        settings: brokers and the policy topic.
        reloader: compiles and swaps the policy set (keeps the running set on an invalid one).
        interval: seconds between retries after a failure.
    """

    def __init__(
        self, settings: KafkaSettings, reloader: PolicyReloader, interval: float = 1.0
    ) -> None:
        self.settings = settings
        self.reloader = reloader
        self.interval = interval
        self.synced = asyncio.Event()  # set once the topic was read to its end
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start following the topic in the background."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("policy topic watch failed, restarting: %s", exc)
                await asyncio.sleep(self.interval)

    async def _follow(self) -> None:
        reader = _TopicReader(self.settings)
        try:
            await reader.open()
            entries: dict[str, tuple[int, bytes]] = {}
            await reader.read_to_end(entries)
            if self._values(entries) != self.reloader.kv_entries:
                self.reloader.reload(SOURCE, self._values(entries))
            self.synced.set()
            while True:
                batches = await reader.consumer.getmany(timeout_ms=int(self.interval * 1000))
                if reader.apply(batches, entries):  # also after a rejected update: retried
                    self.reloader.reload(SOURCE, self._values(entries))
                elif await self._truncated(reader):
                    raise PolicyTopicError(f"{self.settings.policy_topic} was created anew")
        finally:
            await reader.close()

    async def _truncated(self, reader: _TopicReader) -> bool:
        """Whether the position read is past the partition's end (the topic was re-created).

        The end is the larger of the end offset and the last fetch's high watermark: tansu's
        ListOffsets names the last batch's base offset + 1, short of the end when that batch
        holds several records (docs/kafka.md), while its fetch high watermark is exact.
        """
        ends = await reader.end_offsets()
        high = reader.consumer.highwater
        return any(
            at > ends[tp] and at > (high(tp) or 0) for tp, at in (await reader.positions()).items()
        )

    @staticmethod
    def _values(entries: dict[str, tuple[int, bytes]]) -> dict[str, bytes]:
        return {name: value for name, (_, value) in entries.items()}

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
