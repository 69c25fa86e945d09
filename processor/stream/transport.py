"""The NATS side of the transport seam (:mod:`processor.transport`): acks, JetStream publishes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processor.stream.consumer import Delivery, ack_many, in_progress_many
from processor.transport import Item, Message

__all__ = ["NatsTransport", "stream_of"]


class NatsTransport:
    """Settle by ``+ACK`` on the consuming connection, publish through ``publisher``
    (a :class:`~processor.stream.publisher.JsPublisher`, on its own connection).

    Attributes:
        nc: the connection the deliveries came from.
        publisher: anything with ``publish_all(items) -> fresh positions``.
    """

    name = "nats"

    def __init__(self, nc: Any, publisher: Any) -> None:
        self.nc = nc
        self.publisher = publisher

    async def settle(self, deliveries: Sequence[Message]) -> None:
        await ack_many(self.nc, deliveries)  # type: ignore[arg-type]

    async def keep_alive(self, deliveries: Sequence[Message]) -> None:
        await in_progress_many(self.nc, deliveries)  # type: ignore[arg-type]

    def position(self, delivery: Message) -> tuple[str, int]:
        d: Delivery = delivery  # type: ignore[assignment]
        return stream_of(d), d.stream_seq

    async def publish(self, items: Sequence[Item], owners: Sequence[Message | None]) -> list[int]:
        fresh: list[int] = await self.publisher.publish_all(items)
        return fresh


def stream_of(delivery: Delivery) -> str:
    """The stream a delivery came from (its ack subject: ``$JS.ACK.<stream>.<consumer>...``)."""
    parts = delivery.reply.split(".")
    if len(parts) > 2 and parts[1] == "ACK":
        return parts[4] if len(parts) >= 12 else parts[2]  # v2 subjects carry domain + hash
    return ""
