"""The transport seam: what differs between the NATS and the Kafka worker (docs/kafka.md).

The translator, batching, the sinks, dead-lettering and the ack-after-commit contract live in
:class:`processor.worker.pipeline.Pipeline`, once. A transport brings the rest:

- **arrival**: its intake hands batches of deliveries to ``Pipeline.handle(deliveries, source,
  partition)`` and pauses/resumes on backpressure (:class:`Intake`);
- **settlement**: :meth:`Transport.settle` is called with deliveries whose batch's insert and
  publishes succeeded (or that gave nothing to keep): NATS acks them, Kafka commits the offsets
  up to which every record of the partition is settled;
- **publish**: :meth:`Transport.publish` sends activities and dead letters and returns once the
  server stored them.

A delivery is anything with the input's bytes as ``data`` (:class:`Message`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["Intake", "Item", "Message", "Transport"]

#: One message to publish: subject (NATS; the topic is chosen from it on Kafka), payload, and a
#: deterministic id (``Nats-Msg-Id`` on NATS, the ``id`` header on Kafka) or None.
Item = tuple[str, bytes, str | None]


class Message(Protocol):
    """One input delivery as the pipeline sees it."""

    @property
    def data(self) -> bytes:
        """The payload."""
        ...


class Transport(Protocol):
    """Settlement and publishing of one transport."""

    #: ``nats`` or ``kafka`` (logs, metrics).
    name: str

    async def settle(self, deliveries: Sequence[Message]) -> None:
        """Acknowledge ``deliveries``: everything they produced is stored and published."""
        ...

    async def keep_alive(self, deliveries: Sequence[Message]) -> None:
        """Tell the server that ``deliveries`` are still being worked on (NATS ``+WPI``)."""
        ...

    def position(self, delivery: Message) -> tuple[str, int]:
        """Where ``delivery`` is kept: ``(stream, sequence)`` on NATS, ``(topic/partition,
        offset)`` on Kafka (dead-letter ids and payload pointers)."""
        ...

    async def publish(self, items: Sequence[Item], owners: Sequence[Message | None]) -> list[int]:
        """Publish ``items`` (``owners[i]``: the delivery item ``i`` came from, None if none)
        and wait until every one is stored.

        Returns:
            The positions of the items stored for the first time (not recognised as a
            duplicate: NATS's duplicate window tells; Kafka stores every repeat and reports as
            repeats the dead letters whose id this worker stored before).

        Raises:
            Exception: some item was not stored (the caller retries the whole call);
                a ``PublishError`` carries in ``fresh`` what was stored meanwhile.
        """
        ...


class Intake(Protocol):
    """The arrival side of a transport: a consumer that hands deliveries to the pipeline."""

    def pause(self) -> None:
        """Stop handing over deliveries (backpressure)."""
        ...

    def resume(self) -> None:
        """Hand over deliveries again."""
        ...

    async def stop(self) -> None:
        """Stop for good; deliveries handed over before stay the pipeline's to settle."""
        ...
