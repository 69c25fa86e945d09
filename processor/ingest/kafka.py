"""``--kafka-brokers``: the ingest publishes to the Kafka transport's topics instead of NATS.

The messages are the ones made for NATS (:mod:`processor.ingest.batching`): a partition's audit
EventList goes to that partition of the audit topic, its list of Events to that partition of the
Event topic (the partition function of :mod:`processor.subjects`, as :mod:`processor.kafka.route`
has it for every Kafka producer), a dead letter to partition 0 of the dead-letter topic. Each
carries the transport's headers, ``subject`` and ``id`` (the ``Nats-Msg-Id``). A message of records
of several objects has no single object key: it is sent without a key, its partition explicit.

A request gets 200 once the brokers acknowledged every message (``acks=all``). Kafka drops no
duplicates: a retried request is stored again, which stays invisible downstream (activity names
are deterministic, ClickHouse collapses rows by origin id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from processor.ingest.batching import Message
from processor.ingest.metrics import IngestMetrics
from processor.ingest.publish import Limits, Publisher, Unavailable
from processor.kafka.settings import KafkaSettings

__all__ = ["KAFKA_MESSAGE_BYTES", "KafkaPublisher"]

#: The largest message the producer sends (its and the brokers' default limit, 1 MiB), less
#: room for the record's framing and headers.
KAFKA_MESSAGE_BYTES = (1 << 20) - 8192


class KafkaPublisher(Publisher):
    """Publishes the ingest's messages with an aiokafka producer.

    Args:
        settings: the topics, brokers and partition count.
        metrics: as :class:`~processor.ingest.publish.Publisher`.
        timeout: seconds a send may take before the request gets 503.
    """

    def __init__(self, settings: KafkaSettings, metrics: IngestMetrics, timeout: float) -> None:
        super().__init__(metrics)
        self.settings = settings
        self.timeout = timeout
        self.producer: Any = None
        #: why the last delivery failed ("" after a success): the readiness check
        self.error = "not started"

    @property
    def limits(self) -> Limits:
        """The largest message bodies, as the NATS streams' limits are read."""
        return Limits(KAFKA_MESSAGE_BYTES, KAFKA_MESSAGE_BYTES, KAFKA_MESSAGE_BYTES)

    async def start(self, provision: bool) -> None:
        """Create the topics (``provision``) and start the producer.

        Raises:
            KafkaTopicError: the brokers are unreachable or a topic cannot be made.
        """
        from processor.kafka.produce import new_producer
        from processor.kafka.topics import ensure_topics

        if provision:
            await ensure_topics(self.settings)
        self.producer = new_producer(
            self.settings.bootstrap,
            self.settings.compression,
            max_request_size=1 << 20,
            request_timeout_ms=int(self.timeout * 1000),
        )
        await self.producer.start()
        self.error = ""

    async def _deliver(self, messages: Sequence[Message]) -> set[int]:
        if self.producer is None:
            raise Unavailable("the Kafka producer is not started")
        s = self.settings
        futures = []
        try:
            async with asyncio.timeout(self.timeout):  # metadata waits and a full buffer too
                for m in messages:
                    if m.partition == "dlq":
                        topic, partition = s.dead_letter_topic, 0
                    else:
                        topic = s.audit_topic if m.source == "audit" else s.event_topic
                        partition = int(m.partition)
                    headers = [("subject", m.subject.encode()), ("id", m.msg_id.encode())]
                    send = self.producer.send(topic, m.data, partition=partition, headers=headers)
                    futures.append(await send)
                await asyncio.gather(*futures)
        except Exception as exc:  # KafkaError, a timeout: the sender retries
            for future in futures:
                future.cancel()
            self.error = f"Kafka publish failed: {exc!r}"
            raise Unavailable(self.error) from None
        self.error = ""
        return set(range(len(messages)))

    async def close(self) -> None:
        """Send what is buffered and stop the producer."""
        if self.producer is not None:
            producer, self.producer = self.producer, None
            await producer.stop()
