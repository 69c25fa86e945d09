"""Consume rate: stock nats-py ``fetch`` + ``ack`` against ``PullConsumer`` + ``ack_many``.

Publishes N messages of 4.7 KB (default 50,000) to a fresh stream on a private nats-server, then
reads them all through two durable consumers on the same stream in the same run:

* baseline: ``js.pull_subscribe`` + ``fetch(batch=100)`` + ``await msg.ack()`` per message;
* project: :class:`processor.stream.consumer.PullConsumer` + :func:`ack_many` per group.

It also times publishing (``js.publish`` awaiting each PubAck, on a sample, against
``JsPublisher`` with a window of 1000). Prints msgs/s and the ratios. Not a test: run it as

    python tests/bench/consume_rate.py [-n 50000] [--loop asyncio|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from processor.stream.consumer import Delivery, PullConsumer, ack_many
from processor.stream.publisher import JsPublisher
from processor.stream.server import NatsServer

STREAM = "BENCH"
SIZE = 4700


async def publish(js: Any, n: int, sample: int) -> tuple[float, float]:
    """Publish n messages with JsPublisher; time ``js.publish`` on ``sample`` more."""
    payload = os.urandom(SIZE // 2).hex().encode()[:SIZE]
    started = time.perf_counter()
    publisher = JsPublisher(js, window=1000)
    chunk = 5000
    for first in range(0, n, chunk):
        count = min(chunk, n - first)
        await publisher.publish_all([("bench.in", payload, None)] * count)
    windowed = n / (time.perf_counter() - started)
    await publisher.close()
    await js.add_stream(name="BENCH_SAMPLE", subjects=["sample.>"])
    started = time.perf_counter()
    for _ in range(sample):
        await js.publish("sample.in", payload)
    awaited = sample / (time.perf_counter() - started)
    await js.delete_stream("BENCH_SAMPLE")
    return windowed, awaited


async def consumer(js: Any, name: str) -> None:
    config = ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT, max_ack_pending=1000)
    await js.add_consumer(STREAM, config)


async def baseline(nc: Any, n: int) -> float:
    """Stock nats-py: pull_subscribe + fetch(batch=100) + ack() per message."""
    js = nc.jetstream()
    await consumer(js, "baseline")
    sub = await js.pull_subscribe("bench.>", durable="baseline", stream=STREAM)
    count = 0
    started = time.perf_counter()
    while count < n:
        for msg in await sub.fetch(batch=100, timeout=5):
            await msg.ack()
            count += 1
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    return count / elapsed


async def project(nc: Any, n: int, batch: int) -> tuple[float, Any]:
    """PullConsumer + ack_many per group."""
    await consumer(nc.jetstream(), "project")
    done = asyncio.Event()
    count = 0

    async def on_batch(group: list[Delivery]) -> None:
        nonlocal count
        await ack_many(nc, group)
        count += len(group)
        if count >= n:
            done.set()

    pull = PullConsumer(nc, STREAM, "project", on_batch, batch=batch)
    started = time.perf_counter()
    await pull.start()
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    await pull.stop()
    return count / elapsed, pull.stats


async def main(url: str, n: int, batch: int, sample: int) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(name=STREAM, subjects=["bench.>"], max_bytes=4 << 30)
    windowed, awaited = await publish(js, n, sample)
    print(f"publish  js.publish awaited each ({sample:,}): {awaited:>9,.0f} msgs/s")
    print(
        f"publish  JsPublisher window 1000 ({n:,}): {windowed:>9,.0f} msgs/s"
        f"  x{windowed / awaited:.1f}"
    )
    base = await baseline(nc, n)
    print(f"consume  nats-py fetch(100) + ack():     {base:>9,.0f} msgs/s")
    rate, stats = await project(nc, n, batch)
    print(f"consume  PullConsumer + ack_many:        {rate:>9,.0f} msgs/s  x{rate / base:.2f}")
    print(
        f"         (groups {stats.batches:,}, avg {stats.received / max(stats.batches, 1):.0f} "
        f"msgs; pulls {stats.pulls:,})"
    )
    await nc.drain()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="messages (default 50000)")
    parser.add_argument("--batch", type=int, default=256, help="PullConsumer batch (256)")
    parser.add_argument("--sample", type=int, default=5000, help="awaited js.publish sample")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--url", help="use this nats-server instead of a private one")
    args = parser.parse_args()
    run: Any = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        run = uvloop.run
    print(f"python {sys.version.split()[0]}, loop {args.loop}, {args.n:,} x {SIZE} B")
    if args.url:
        run(main(args.url, args.n, args.batch, args.sample))
        return
    with (
        tempfile.TemporaryDirectory(prefix="consume-rate-") as tmp,
        NatsServer(Path(tmp) / "nats") as server,
    ):
        run(main(server.url, args.n, args.batch, args.sample))


if __name__ == "__main__":
    cli()
