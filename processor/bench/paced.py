"""What the latency phases share: publishing at a paced rate, and p50/p99 of the timings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

#: One message of a phase: (the origin ids of its records, subject, payload).
Message = tuple[list[str], str, bytes]


async def publish_paced(
    nc: Any, messages: Sequence[Message], rate: float, on_send: Callable[[list[str], str], None]
) -> None:
    """Publish ``messages`` (core NATS) in 10 ms ticks, each tick up to ``rate`` records/s so
    far (a message counts its records); ``on_send(origins, subject)`` runs just before each
    publish, to stamp it."""
    tick, ticks, i, published = 0.01, 0, 0, 0
    started = time.perf_counter()
    while i < len(messages):
        ticks += 1
        due = rate * ticks * tick
        while i < len(messages) and published < due:
            origins, subject, payload = messages[i]
            on_send(origins, subject)
            await nc.publish(subject, payload)
            published += len(origins)
            i += 1
        await asyncio.sleep(max(started + ticks * tick - time.perf_counter(), 0))


def p50_p99(latencies_ms: list[float]) -> dict[str, float]:
    """``p50_ms`` and ``p99_ms`` of the timings (NaN when there are none)."""
    if not latencies_ms:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    lat = sorted(latencies_ms)
    return {"p50_ms": lat[len(lat) // 2], "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))]}
