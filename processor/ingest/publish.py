"""Publishing a request's messages to JetStream, and what a failure means for the HTTP answer.

All messages of a request (partition messages, dead letters, shared copies) are published at once
with :class:`~processor.stream.publisher.JsPublisher` (a window of outstanding PubAcks on one
inbox), and the call returns when every PubAck arrived. A PubAck that says ``duplicate`` is a
success: the message is stored already (a retried request).

Failures map to HTTP statuses that make kube-apiserver retry:

- :class:`StreamFull` (429): a PubAck error of a full stream (``maximum messages exceeded``,
  ``maximum bytes exceeded``, ``maximum messages per subject exceeded``, or JetStream's
  ``insufficient resources``) -- a stream that discards new messages is at its limit;
- :class:`Unavailable` (503): no connection to NATS, no stream on the subject (``no
  responders``), no PubAck within the timeout, or any other failure.

Both carry ``Retry-After``. Messages that were stored before the failure are stored once: the
retried request has the same message ids.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from processor.errors import ProcessorError
from processor.ingest.batching import Message
from processor.ingest.metrics import IngestMetrics
from processor.stream.publisher import JsPublisher, PublishError
from processor.stream.topology import HEADER_RESERVE

__all__ = [
    "Limits",
    "NatsPublisher",
    "PublishFailed",
    "Publisher",
    "StreamFull",
    "Unavailable",
    "read_limits",
]

_FULL = re.compile(
    r"maximum (?:messages|bytes|messages per subject) exceeded|insufficient resources",
    re.IGNORECASE,
)


class PublishFailed(ProcessorError):
    """The request's records are not all acknowledged; the client should retry.

    Attributes:
        status: the HTTP status (429 or 503).
        outcome: the metric label (``full`` or ``unavailable``).
    """

    retriable = True
    status = 503
    outcome = "unavailable"


class Unavailable(PublishFailed):
    """NATS or the stream cannot take the messages now (503)."""


class StreamFull(PublishFailed):
    """A stream is at its limits and refuses new messages (429)."""

    status = 429
    outcome = "full"


def classify(error: PublishError) -> PublishFailed:
    """:class:`StreamFull` when every reason is a full stream, else :class:`Unavailable`."""
    reasons = error.reasons or [str(error)]
    if all(_FULL.search(reason) for reason in reasons):
        return StreamFull(str(error))
    return Unavailable(str(error))


@dataclass(frozen=True, slots=True)
class Limits:
    """The largest message bodies the input streams and the DLQ take (headers reserved)."""

    audit: int
    event: int
    dead_letter: int


async def read_limits(js: Any, max_payload: int) -> Limits:
    """Each stream's ``max_msg_size`` bounded by the server's ``max_payload``, less
    :data:`~processor.stream.topology.HEADER_RESERVE` for the headers."""

    async def limit(name: str) -> int:
        size = -1
        try:
            size = (await js.stream_info(name)).config.max_msg_size or -1
        except Exception:  # missing or unreadable: the server's limit alone
            size = -1
        cap = max_payload if size <= 0 else min(size, max_payload)
        return max(cap - HEADER_RESERVE, 1)

    return Limits(
        await limit("AUDIT_EVENTS"), await limit("EVENTS"), await limit("ACTIVITY_DEAD_LETTER")
    )


class Publisher:
    """Publishes messages and counts what the transport acknowledged.

    Subclasses deliver (:meth:`_deliver`): :class:`NatsPublisher` to JetStream,
    :class:`processor.ingest.kafka.KafkaPublisher` to Kafka.

    Args:
        metrics: counters of records, bytes, messages, duplicates and latency.
    """

    def __init__(self, metrics: IngestMetrics) -> None:
        self.metrics = metrics
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    async def send(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` at once and return when the transport acknowledged all of them.

        Raises:
            Unavailable: not connected, no stream, a timeout or another failure.
            StreamFull: a stream refused them because it is full.
        """
        if not messages:
            return
        started = time.perf_counter()
        try:
            fresh = await self._deliver(messages)
        finally:
            self.metrics.publish_latency.observe(time.perf_counter() - started)
        self._count(messages, fresh)

    async def _deliver(self, messages: Sequence[Message]) -> set[int]:
        """Deliver ``messages``; the positions of those stored now (not duplicates)."""
        raise NotImplementedError

    def _count(self, messages: Sequence[Message], fresh: set[int]) -> None:
        m = self.metrics
        tally: dict[tuple[str, str], list[int]] = {}
        batch_sizes: dict[str, list[int]] = {}
        for i, message in enumerate(messages):
            if i not in fresh:
                m.duplicates.labels(message.source).inc()
            if message.partition == "dlq":
                m.dead_letters.labels(message.source).inc()
                continue
            counts = tally.setdefault((message.source, message.partition), [0, 0, 0])
            counts[0] += message.records
            counts[1] += len(message.data)
            counts[2] += 1
            if message.partition != "shared":
                batch_sizes.setdefault(message.source, []).append(message.records)
        for source, sizes in batch_sizes.items():
            histogram = self._child(m.batch_records, source)
            for size in sizes:
                histogram.observe(size)
        for (source, partition), (records, size, count) in tally.items():
            self._child(m.records, source, partition).inc(records)
            self._child(m.bytes, source, partition).inc(size)
            self._child(m.messages, source, partition).inc(count)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered (a few hundred label sets at most)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    async def close(self) -> None:
        """Release the transport."""


class NatsPublisher(Publisher):
    """JetStream: a window of PubAcks on one inbox (:class:`JsPublisher`); a ``duplicate``
    PubAck is a success.

    Args:
        nc: the nats-py client.
        metrics: as :class:`Publisher`.
        timeout: seconds without a PubAck before the missing ones count as failed.
    """

    def __init__(self, nc: Any, metrics: IngestMetrics, timeout: float) -> None:
        super().__init__(metrics)
        self.nc = nc
        self._js = JsPublisher(nc, timeout=timeout)

    async def _deliver(self, messages: Sequence[Message]) -> set[int]:
        if not self.nc.is_connected:
            raise Unavailable("not connected to NATS")
        try:
            fresh = await self._js.publish_all([(m.subject, m.data, m.msg_id) for m in messages])
        except PublishError as exc:
            raise classify(exc) from None
        return set(fresh)

    async def close(self) -> None:
        """Stop reading PubAcks."""
        await self._js.close()
