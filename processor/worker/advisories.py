"""MaxDeliver exhaustion is never silent: JetStream's advisory becomes a dead letter.

When a consumer has delivered a message ``max_deliver`` times without an ack, NATS stops
redelivering it and publishes ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>``.
:class:`MaxDeliveriesWatch` listens for the worker's own consumers; for each advisory it counts
``activity_processor_max_deliveries_total``, logs an error, reads the message by its stream
sequence (while the stream still has it) and publishes it to the dead-letter queue as
``max_deliveries`` with ``Nats-Msg-Id: dlq-maxdeliver-<stream>-<seq>``, so workers that all saw
the advisory (shared consumers) store it once. See ``docs/reliability.md``.

Advisories are plain NATS messages: one sent while no worker is connected is not seen. The input
itself stays in its stream (limits retention) and the advisory counts on nats-server's
``/jsz``; the reliability doc says how to find and replay such a message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from processor.deadletter import MAX_DELIVERIES, dead_letter_record
from processor.metrics import Metrics

log = logging.getLogger(__name__)

__all__ = ["ADVISORY_PREFIX", "MaxDeliveriesWatch"]

ADVISORY_PREFIX = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
STOP_WAIT = 5.0
#: (record, stream, sequence, the message's data or None when it is gone) -> published
Publish = Callable[[dict[str, Any], str, int, bytes | None], Awaitable[None]]


class MaxDeliveriesWatch:
    """Turns the max-deliveries advisories of some consumers into dead letters.

    Args:
        nc: the NATS client to subscribe with.
        js: its JetStream context (to read a message by sequence).
        consumers: ``(stream, durable, event type)`` of the consumers to watch; the event type is
            ``audit`` or ``k8s-event``.
        metrics: the worker's metrics.
        publish: publishes one dead letter and returns once the DLQ stored it.
    """

    def __init__(
        self,
        nc: Any,
        js: Any,
        consumers: Iterable[tuple[str, str, str]],
        metrics: Metrics,
        publish: Publish,
    ) -> None:
        self.nc = nc
        self.js = js
        self.types = {(stream, durable): kind for stream, durable, kind in consumers}
        self.metrics = metrics
        self.publish = publish
        self.seen = 0
        self._subs: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Subscribe to the advisories of every watched consumer."""
        for stream, durable in self.types:
            subject = f"{ADVISORY_PREFIX}.{stream}.{durable}"
            self._subs.append(await self.nc.subscribe(subject, cb=self._on_advisory))

    async def stop(self) -> None:
        """Unsubscribe and wait for the dead letters under way."""
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("unsubscribe failed: %r", exc)
        self._subs.clear()
        if self._tasks:  # a publish retries while NATS is away: give it a moment, no more
            _done, left = await asyncio.wait(self._tasks, timeout=STOP_WAIT)
            for task in left:
                task.cancel()
                log.error("a max-deliveries dead letter was not published before stopping")

    async def _on_advisory(self, msg: Any) -> None:
        try:
            advisory = orjson.loads(msg.data)
            stream, consumer = str(advisory["stream"]), str(advisory["consumer"])
            seq, deliveries = int(advisory["stream_seq"]), int(advisory.get("deliveries", 0))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("unreadable max-deliveries advisory on %s: %r", msg.subject, exc)
            return
        kind = self.types.get((stream, consumer))
        if kind is None:
            return
        self.seen += 1
        self.metrics.max_deliveries.labels(stream, consumer).inc()
        log.error(
            "NATS gave up on %s sequence %d after %d deliveries to %s; dead-lettering it",
            stream,
            seq,
            deliveries,
            consumer,
        )
        task = asyncio.ensure_future(self._dead_letter(kind, stream, consumer, seq, deliveries))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dead_letter(
        self, kind: str, stream: str, consumer: str, seq: int, deliveries: int
    ) -> None:
        error = (
            f"not acknowledged after {deliveries} deliveries to consumer {consumer}: NATS "
            f"stopped redelivering {stream} sequence {seq}"
        )
        data: bytes | None = None
        try:
            data = (await self.js.get_msg(stream, seq)).data or b""
        except Exception as exc:
            error += f"; the message could not be read back ({exc!r})"
        record = dead_letter_record(kind, data if data is not None else b"", error, MAX_DELIVERIES)
        if data is None:
            record["originalPayload"] = None
            record.pop("originalPayloadEncoding", None)
        try:
            await self.publish(record, stream, seq, data)
        except Exception as exc:  # the pipeline retries until stopped: only a stop gets here
            log.error("dead letter of %s sequence %d not published: %r", stream, seq, exc)
