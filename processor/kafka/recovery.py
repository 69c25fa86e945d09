"""Faust's table recovery, read up to a fence record rather than the brokers' end offset.

Faust recovers an assigned table partition from its changelog up to the "highwater" it takes
from the brokers' end offset (``ListOffsets``, latest). tansu answers that with the base offset
of the partition's last record *batch* plus one, not the end of the log: after a batch at
offsets 3-4 it answers 4, so Faust stops after offset 3 and the record at offset 4 is never
applied (measured; docs/kafka.md#table-recovery-on-tansu). The reconciler then found a state
that still held the Event its last write had marked published, and published it again.

Here each active changelog partition gets a fence record (key ``~fence.<partition>``) written
with ``acks=all`` when the recovery starts, and the recovery reads up to the fence's offset, as
the produce answer gives it (tansu gets that one right). Every write acknowledged before the
fence is applied, on tansu and on Kafka alike; on Kafka the extra record per partition and
rebalance is compacted away with its key. Standby partitions keep Faust's highwater (the apps
here run none).
"""

from __future__ import annotations

import time
from typing import Any

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery

__all__ = ["FENCE_PREFIX", "FencedRecovery", "FencedTableManager"]

#: Key prefix of the fence records in a changelog (``~fence.<partition>``).
FENCE_PREFIX = "~fence"


class FencedRecovery(Recovery):
    """:class:`faust.tables.recovery.Recovery` with fenced highwaters for active partitions."""

    async def _build_highwaters(
        self, consumer: Any, tps: Any, destination: Any, title: str
    ) -> None:
        if title != "active" or not tps:
            await super()._build_highwaters(consumer, tps, destination, title)
            return
        producer = await self.app.maybe_start_producer()
        stamp = f"{self.app.conf.id} {time.time():.3f}".encode()
        sent = {
            tp: await producer.send(
                tp.topic, f"{FENCE_PREFIX}.{tp.partition}".encode(), stamp, tp.partition, None, None
            )
            for tp in sorted(tps)
        }
        destination.clear()
        for tp, future in sent.items():
            # the highwater is the offset of the last record to read: the fence's own
            destination[tp] = (await future).offset
        self.log.info(
            "Fenced highwaters for active changelog partitions: %s",
            ", ".join(f"{tp.topic}[{tp.partition}]={offset}" for tp, offset in destination.items()),
        )


class FencedTableManager(TableManager):
    """Faust's table manager with :class:`FencedRecovery` (setting ``TableManager``)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = FencedRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
