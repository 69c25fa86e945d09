"""The transport's own latency: what nats-server and the loopback add at a rate, with no worker.

``activity bench --e2e`` times each latency phase again with the worker replaced by the
project's pull consumer (:class:`~processor.stream.consumer.PullConsumer`, the worker's request
sizes) in a child process that acks every delivery and does nothing else. The same messages are
published the same way (core NATS, 10 ms ticks) into the worker's streams, so the figure is the
floor under the worker's latency at that rate: JetStream storing and delivering the bytes on
cores shared with the producer. Each message is timed from its publish to its delivery; a
message is known by its stream and sequence (one publisher on a fresh server: the n-th message
published to a stream is its sequence n).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import orjson

from processor.bench.paced import Message, p50_p99, publish_paced
from processor.config import Settings
from processor.stream.consumer import PullConsumer, ack_many, request_bytes
from processor.stream.topology import ensure_streams

#: (subject prefix, stream) of the partition subjects the bench publishes to.
STREAMS = (("audit.k8s.p", "AUDIT_EVENTS"), ("events.p", "EVENTS"))


def stream_of(subject: str) -> str:
    """The stream a bench subject (``audit.k8s.p<N>`` / ``events.p<N>``) is stored in."""
    for prefix, stream in STREAMS:
        if subject.startswith(prefix):
            return stream
    raise ValueError(f"not a partition subject: {subject}")


def main(argv: list[str]) -> None:
    """The child process (``python -m processor.bench.transport URL PARTITIONS``): consume every
    partition of both streams and ack; print ``ready``, then, once a line arrives on stdin, the
    deliveries as JSON ``[[stream, sequence, time.time()], ...]``."""
    asyncio.run(_receive(argv[0], int(argv[1])))


async def _receive(url: str, partitions: int) -> None:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js)
    got: list[tuple[str, int, float]] = []
    settings = Settings()
    # as many consumers as the worker has (its two for the upstream subjects get nothing here)
    max_bytes = request_bytes(
        settings.pull_max_bytes, settings.pull_budget_bytes, partitions * len(STREAMS) + 2
    )
    consumers = []
    for prefix, stream in STREAMS:

        def on_batch(deliveries: list[Any], stream: str = stream) -> Any:
            now = time.time()
            got.extend((stream, d.stream_seq, now) for d in deliveries)
            return ack_many(nc, deliveries)

        for p in range(partitions):
            durable = f"transport-{stream.lower()}-{p}"
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name=durable,
                    filter_subject=f"{prefix}{p}",
                    ack_policy=AckPolicy.EXPLICIT,
                    max_ack_pending=100_000,
                ),
            )
            consumer = PullConsumer(
                nc, stream, durable, on_batch, batch=settings.pull_batch, max_bytes=max_bytes
            )
            await consumer.start()
            consumers.append(consumer)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    for consumer in consumers:
        await consumer.stop()
    await nc.drain()
    sys.stdout.buffer.write(orjson.dumps(got))
    sys.stdout.flush()


def latency(url: str, messages: list[Message], rate: float, partitions: int) -> dict[str, float]:
    """p50/p99 ms from publish to delivery of ``messages`` published at ``rate`` records/s."""
    cmd = [sys.executable, "-m", "processor.bench.transport", url, str(partitions)]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            if proc.stdout.readline().strip() != b"ready":
                raise RuntimeError("the transport receiver did not start")
            sent = asyncio.run(_publish(url, messages, rate))
            time.sleep(3)
            proc.stdin.write(b"stop\n")
            proc.stdin.flush()
            out = proc.stdout.read()
            if not out:
                raise RuntimeError("the transport receiver ended without its deliveries")
            got = orjson.loads(out)
        finally:
            if proc.poll() is None:
                proc.kill()
    lat = [(at - sent[stream][seq - 1]) * 1000 for stream, seq, at in got]
    return {**p50_p99(lat), "messages": float(len(lat))}


async def _publish(url: str, messages: list[Message], rate: float) -> dict[str, list[float]]:
    """Publish as the latency phase does; the publish times per stream, in sequence order."""
    import nats

    nc = await nats.connect(url)
    sent: dict[str, list[float]] = {stream: [] for _, stream in STREAMS}
    await publish_paced(
        nc, messages, rate, lambda _origins, subject: sent[stream_of(subject)].append(time.time())
    )
    await nc.flush()
    await nc.drain()
    return sent


if __name__ == "__main__":
    main(sys.argv[1:])
