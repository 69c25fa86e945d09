"""PubAck paths of ``JsPublisher``: nats-py's subscription callback against the frame splitter.

Publishes N messages of 1.1 KB (an activity's size) with ``Nats-Msg-Id`` headers through
:class:`processor.stream.publisher.JsPublisher` (window 1000, calls of 200 as the worker makes
them) into a fresh stream on a private nats-server, alternating the two ways PubAcks come back:
nats-py's path (a ``Msg`` per PubAck, queued for the subscription's task) and the frame
splitter's (:mod:`processor.stream.frames`). Prints the process CPU per message and msgs/s of
each run, then the medians and their ratio. Not a test: run it as

    python tests/bench/pubacks.py [-n 60000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import nats

from processor.stream import frames
from processor.stream.publisher import JsPublisher
from processor.stream.server import NatsServer

PATHS = ("nats-py", "frames")
_streams = itertools.count(1)
_install = frames.install


async def run(url: str, path: str, count: int) -> tuple[float, float]:
    """(process CPU us per message, msgs/s) of one run on ``path``."""
    frames.install = (lambda nc: None) if path == "nats-py" else _install  # type: ignore[assignment]
    try:
        nc = await nats.connect(url)
        js = nc.jetstream()
        name = f"PUBACKS{next(_streams)}"
        await js.add_stream(name=name, subjects=[f"{name}.>"])
        publisher = JsPublisher(js, window=1000)
        items = [(f"{name}.a", b"x" * 1100, f"id-{i}") for i in range(count)]
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, count, 200):
            await publisher.publish_all(items[i : i + 200])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await publisher.close()
        await nc.drain()
    finally:
        frames.install = _install
    return cpu / count * 1e6, count / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cpu: dict[str, list[float]] = {p: [] for p in PATHS}
    with tempfile.TemporaryDirectory(prefix="pubacks-") as tmp:
        server = NatsServer(Path(tmp) / "nats")
        url = server.start()
        try:
            for _ in range(args.runs):
                for path in PATHS:
                    us, rate = asyncio.run(run(url, path, args.n))
                    cpu[path].append(us)
                    print(f"{path:8s} {us:5.1f} us CPU/message  {rate:8,.0f} msgs/s", flush=True)
        finally:
            server.stop()
    base, ours = (statistics.median(cpu[p]) for p in PATHS)
    print(f"median CPU per message: nats-py {base:.1f} us, frames {ours:.1f} us", end=" ")
    print(f"({base / ours:.2f}x)")


if __name__ == "__main__":
    main()
