"""PullConsumer against a real nats-server: delivery, acks, naks, pause, restart, stall, stop."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Callable
from typing import Any

import nats.aio.client
import pytest

from processor.stream import frames
from processor.stream.connection import READ_BUFFER_SIZE, tune_client
from processor.stream.consumer import (
    Delivery,
    PullConsumer,
    ack_many,
    in_progress_many,
    nak_many,
)
from processor.stream.server import NatsServer
from processor.stream.topology import ensure_consumer
from tests.integration.nats_server import connect, tolerates_reconnect_leak, unique, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, params=["frames", "nats-py"])
def message_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on both message paths: the frame splitter and nats-py's callbacks."""
    if request.param == "nats-py":
        monkeypatch.setattr(frames, "install", lambda nc: None)
    return str(request.param)


class Setup:
    """A per-test stream and durable consumer on one connection."""

    def __init__(self, nc: Any, stream: str, durable: str) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.stream = stream
        self.durable = durable
        self.subject = f"{stream}.in"

    async def publish(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            await self.js.publish(self.subject, payload)

    async def pending(self, expect: tuple[int, int], timeout: float = 5.0) -> tuple[int, int]:
        """(num_ack_pending, num_pending) of the consumer, once it equals ``expect`` or at timeout.

        The server reads acks in order but applies them to the consumer asynchronously, so a
        PING/PONG after the acks does not mean ``consumer_info`` already counts them.
        """
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            info = await self.js.consumer_info(self.stream, self.durable)
            got = info.num_ack_pending, info.num_pending
            if got == expect or loop.time() > end:
                return got
            await asyncio.sleep(0.02)


async def setup(nc: Any, *, ack_wait: float = 30.0, max_ack_pending: int = 1000) -> Setup:
    stream, durable = unique("CONS"), unique("cons")
    s = Setup(nc, stream, durable)
    await s.js.add_stream(name=stream, subjects=[f"{stream}.>"])
    await ensure_consumer(
        s.js,
        stream,
        durable,
        [f"{stream}.>"],
        max_ack_pending=max_ack_pending,
        ack_wait=ack_wait,
        max_deliver=-1,
    )
    return s


class Collector:
    """An on_batch that records deliveries and acks what ``decide`` says (default: all)."""

    def __init__(self, nc: Any, decide: Callable[[Delivery], str] | None = None) -> None:
        self.nc = nc
        self.decide = decide or (lambda d: "ack")
        self.deliveries: list[Delivery] = []
        self.groups: list[int] = []

    async def __call__(self, group: list[Delivery]) -> None:
        self.groups.append(len(group))
        self.deliveries.extend(group)
        actions: dict[str, list[Delivery]] = {"ack": [], "nak": [], "none": []}
        for d in group:
            actions[self.decide(d)].append(d)
        await ack_many(self.nc, actions["ack"], confirm=True)
        await nak_many(self.nc, actions["nak"])

    def seqs(self) -> Counter[int]:
        return Counter(d.stream_seq for d in self.deliveries)


def _no_other_tasks() -> None:
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert not others, f"tasks left running: {others}"


def test_receives_everything_of_mixed_sizes_in_groups(nats_url: str):
    sizes = [0, 1, 4700, 100_000, 900_000] + [4700] * 995

    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        await s.publish([bytes([i % 251]) * size for i, size in enumerate(sizes)])
        got = Collector(nc)
        consumer = PullConsumer(nc, s.stream, s.durable, got, batch=64)
        await consumer.start()
        await wait_until(lambda: len(got.deliveries) >= len(sizes), what="all deliveries")
        await consumer.stop()
        assert [len(d.data) for d in got.deliveries] == sizes  # one stream, one consumer: in order
        assert [d.stream_seq for d in got.deliveries] == list(range(1, len(sizes) + 1))
        assert all(d.num_delivered == 1 and d.subject == s.subject for d in got.deliveries)
        assert all(d.reply.startswith(f"$JS.ACK.{s.stream}.{s.durable}.") for d in got.deliveries)
        assert consumer.stats.received == len(sizes)
        assert consumer.stats.bytes == sum(sizes)
        assert consumer.stats.pulls >= len(sizes) // 64
        assert len(got.groups) < len(sizes)  # handed over in groups, not one by one
        assert await s.pending((0, 0)) == (0, 0)
        await nc.drain()
        _no_other_tasks()

    asyncio.run(main())


def test_a_message_larger_than_max_bytes_is_still_delivered(nats_url: str):
    """A byte limit per request bounds what is in flight; it must not strand a bigger message."""
    sizes = [1000] * 5 + [300_000] + [1000] * 5 + [200_000, 250_000] + [1000] * 3

    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        await s.publish([bytes([i]) * size for i, size in enumerate(sizes)])
        got = Collector(nc)
        consumer = PullConsumer(nc, s.stream, s.durable, got, batch=8, max_bytes=64 * 1024)
        await consumer.start()
        await wait_until(lambda: len(got.deliveries) >= len(sizes), 15, "all deliveries")
        await consumer.stop()
        assert [len(d.data) for d in got.deliveries] == sizes  # in order, none skipped
        assert consumer.stats.statuses.get("409", 0) >= 1  # the server said "exceeds MaxBytes"
        assert await s.pending((0, 0)) == (0, 0)
        await nc.drain()
        _no_other_tasks()

    asyncio.run(main())


def test_messages_arrive_intact_with_the_tuned_read_size(nats_url: str):
    """The worker's 1 MiB socket reads (connection.tune_client) split and join messages right."""
    tune_client()
    assert nats.aio.client.DEFAULT_BUFFER_SIZE == READ_BUFFER_SIZE
    sizes = [7, 900_000, 3, 40_000, 1, 700_000, 65_536, 2, 1_000_000, 5] * 3
    payloads = [bytes([65 + i % 26]) * size + b"%d" % i for i, size in enumerate(sizes)]

    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        await s.publish(payloads)
        got = Collector(nc)
        consumer = PullConsumer(nc, s.stream, s.durable, got, batch=4)
        await consumer.start()
        await wait_until(lambda: len(got.deliveries) >= len(payloads), 15, "all deliveries")
        await consumer.stop()
        assert [d.data for d in got.deliveries] == payloads
        await nc.drain()
        _no_other_tasks()

    asyncio.run(main())


def test_headers_and_the_path_taken(nats_url: str, message_path: str):
    """Published headers reach the delivery on both paths; with the splitter, nats-py's own
    subscription queue never sees a message (they all took the short path)."""

    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        for i in range(20):
            headers = {"Nats-Msg-Id": f"id-{i}", "X-Trace": f"t {i}"} if i % 2 else None
            await s.js.publish(s.subject, b"%d" % i, headers=headers)
        got = Collector(nc)
        consumer = PullConsumer(nc, s.stream, s.durable, got, batch=8)
        await consumer.start()
        sub = consumer._sub
        await wait_until(lambda: len(got.deliveries) >= 20, what="all deliveries")
        await consumer.stop()
        assert [d.data for d in got.deliveries] == [b"%d" % i for i in range(20)]
        for i, d in enumerate(got.deliveries):
            if i % 2:
                assert d.headers is not None
                assert d.headers["Nats-Msg-Id"] == f"id-{i}" and d.headers["X-Trace"] == f"t {i}"
            else:
                assert not d.headers
        assert isinstance(nc._ps, frames.FrameSplitter) == (message_path == "frames")
        assert (sub._received == 0) == (message_path == "frames")
        assert nc.stats["in_msgs"] >= 20
        await nc.drain()

    asyncio.run(main())


def test_sync_on_batch_and_single_messages_as_they_come(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        got: list[Delivery] = []
        consumer = PullConsumer(nc, s.stream, s.durable, got.extend, batch=10, expires=1.0,
                                heartbeat=0.2)  # fmt: skip
        await consumer.start()
        for i in range(25):  # published one at a time while the consumer waits
            await s.publish([b"single-%d" % i])
            await wait_until(lambda i=i: len(got) == i + 1, what=f"message {i}")
        await asyncio.sleep(1.5)  # requests expire (408) and are re-issued; heartbeats arrive
        await s.publish([b"late"])
        await wait_until(lambda: len(got) == 26, what="the message after expiries")
        await ack_many(nc, got, confirm=True)
        await consumer.stop()
        assert [d.data for d in got] == [b"single-%d" % i for i in range(25)] + [b"late"]
        assert consumer.stats.statuses.get("408", 0) >= 1
        assert consumer.stats.heartbeats >= 1
        assert consumer.stats.stalls == 0
        assert await s.pending((0, 0)) == (0, 0)
        await nc.drain()

    asyncio.run(main())


def test_acked_not_redelivered_unacked_redelivered_after_ack_wait(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc, ack_wait=1.0)
        await s.publish([b"%d" % i for i in range(40)])
        # leave every 4th message un-acked on its first delivery
        got = Collector(
            nc, lambda d: "none" if d.stream_seq % 4 == 0 and d.num_delivered == 1 else "ack"
        )
        consumer = PullConsumer(nc, s.stream, s.durable, got, batch=16)
        await consumer.start()
        await wait_until(lambda: len(got.deliveries) >= 50, what="the redeliveries")
        await asyncio.sleep(2.5)  # more than two ack_waits: nothing else may come back
        await consumer.stop()
        counts = got.seqs()
        assert sorted(counts) == list(range(1, 41))
        assert {seq for seq, n in counts.items() if n > 1} == set(range(4, 41, 4))
        assert all(n <= 2 for n in counts.values())
        assert all(d.num_delivered == 2 for d in got.deliveries[40:])
        assert await s.pending((0, 0)) == (0, 0)
        await nc.drain()

    asyncio.run(main())


def test_nak_redelivers_and_nak_with_delay(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        await s.publish([b"a", b"b", b"c"])
        got = Collector(nc, lambda d: "nak" if d.data == b"b" and d.num_delivered < 3 else "ack")
        consumer = PullConsumer(nc, s.stream, s.durable, got)
        await consumer.start()
        await wait_until(lambda: len(got.deliveries) == 5, what="b three times")
        b = [d for d in got.deliveries if d.data == b"b"]
        assert [d.num_delivered for d in b] == [1, 2, 3]
        # a delayed nak: redelivered (later), and in-progress keeps a message out
        delayed: list[Delivery] = []

        async def hold(group: list[Delivery]) -> None:
            delayed.extend(group)

        await consumer.stop()
        await s.publish([b"d"])
        second = PullConsumer(nc, s.stream, s.durable, hold)
        await second.start()
        await wait_until(lambda: len(delayed) == 1, what="d")
        await in_progress_many(nc, delayed)
        await nak_many(nc, delayed, delay=0.3)
        await wait_until(lambda: len(delayed) == 2, what="d again after the delay")
        assert delayed[1].num_delivered == 2
        await ack_many(nc, delayed[1:], confirm=True)
        await second.stop()
        assert await s.pending((0, 0)) == (0, 0)
        await nc.drain()

    asyncio.run(main())


def test_pause_stops_delivery_and_resume_continues(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        got = Collector(nc)
        consumer = PullConsumer(nc, s.stream, s.durable, got, batch=5, expires=1.0, heartbeat=0.2)
        await consumer.start()
        await s.publish([b"x"] * 5)
        await wait_until(lambda: len(got.deliveries) == 5, what="first messages")
        consumer.pause()
        # requests outstanding when paused may still deliver up to a batch each; let them
        # expire, then nothing may arrive
        await asyncio.sleep(1.5)
        before = len(got.deliveries)
        await s.publish([b"y"] * 30)
        await asyncio.sleep(1.5)
        assert len(got.deliveries) == before
        assert consumer.paused
        consumer.resume()
        await wait_until(lambda: len(got.deliveries) == 35, what="the rest after resume")
        await consumer.stop()
        assert sorted(got.seqs()) == list(range(1, 36))
        await nc.drain()

    asyncio.run(main())


@tolerates_reconnect_leak
def test_survives_server_restart_mid_stream(fresh_nats_server: NatsServer):
    server = fresh_nats_server

    async def main() -> None:
        nc = await connect(server.url)
        s = await setup(nc, ack_wait=2.0)
        await s.publish([b"%d" % i for i in range(3000)])
        confirmed: set[int] = set()
        got: list[Delivery] = []

        async def handle(group: list[Delivery]) -> None:
            got.extend(group)
            await asyncio.sleep(0.002)  # work
            await ack_many(nc, group, confirm=True)
            confirmed.update(d.stream_seq for d in group)

        consumer = PullConsumer(nc, s.stream, s.durable, handle, batch=50, expires=2.0,
                                heartbeat=0.5, stall_timeout=3.0)  # fmt: skip
        await consumer.start()
        await wait_until(lambda: len(got) >= 1000, what="a third of the messages")
        acked_before = set(confirmed)
        await asyncio.to_thread(server.restart)
        await wait_until(lambda: nc.stats["reconnects"] == 1 and nc.is_connected, what="reconnect")
        await s.publish([b"after-%d" % i for i in range(500)])
        await wait_until(lambda: set(range(1, 3501)) <= confirmed, 60, "every message acked")
        await consumer.stop()
        counts = Counter(d.stream_seq for d in got)
        assert sorted(counts) == list(range(1, 3501))
        assert not [seq for seq in acked_before if counts[seq] > 1], "acked ones came back"
        assert consumer.stats.reconnects == 1
        await nc.drain()

    asyncio.run(main())


def test_stall_watchdog_reissues_requests(fresh_nats_server: NatsServer):
    server = fresh_nats_server

    async def main() -> None:
        nc = await connect(server.url, ping_interval=60)
        s = await setup(nc)
        got = Collector(nc)
        consumer = PullConsumer(nc, s.stream, s.durable, got, expires=60.0, heartbeat=0.2,
                                stall_timeout=1.0)  # fmt: skip
        await consumer.start()
        await s.publish([b"before"])
        await wait_until(lambda: len(got.deliveries) == 1, what="the first message")
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the server goes silent, the connection stays up
        try:
            await wait_until(lambda: consumer.stats.stalls >= 1, 10, "the watchdog")
        finally:
            os.kill(pid, signal.SIGCONT)
        await s.publish([b"after"])
        await wait_until(lambda: len(got.deliveries) == 2, what="the message after the stall")
        await consumer.stop()
        assert [d.data for d in got.deliveries] == [b"before", b"after"]
        await nc.drain()

    asyncio.run(main())


def test_consumer_deleted_and_recreated_resumes(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        got = Collector(nc)
        consumer = PullConsumer(nc, s.stream, s.durable, got, expires=2.0, heartbeat=0.5)
        await consumer.start()
        await s.publish([b"one"])
        await wait_until(lambda: len(got.deliveries) == 1, what="one")
        await s.js.delete_consumer(s.stream, s.durable)
        await wait_until(lambda: "409" in consumer.stats.statuses, 10, "409 consumer deleted")
        await ensure_consumer(s.js, s.stream, s.durable, [f"{s.stream}.>"], max_ack_pending=10,
                              ack_wait=30, max_deliver=-1)  # fmt: skip
        await s.publish([b"two"])
        # a new consumer delivers the stream from the start again
        await wait_until(lambda: [d.data for d in got.deliveries][-1:] == [b"two"], 15, "two")
        await consumer.stop()
        await nc.drain()

    asyncio.run(main())


def test_stop_hands_over_everything_received_and_is_clean(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        await s.publish([b"%d" % i for i in range(2000)])
        handed: list[Delivery] = []
        release = asyncio.Event()

        async def slow(group: list[Delivery]) -> None:
            handed.extend(group)
            await release.wait()

        consumer = PullConsumer(nc, s.stream, s.durable, slow, batch=100)
        await consumer.start()
        await wait_until(lambda: consumer.stats.received >= 200, what="some deliveries")
        stopping = asyncio.ensure_future(consumer.stop())
        await asyncio.sleep(0.1)
        release.set()
        await stopping
        received = consumer.stats.received
        assert len(handed) == received  # nothing received was dropped
        assert len({d.stream_seq for d in handed}) == received  # nor handed twice
        await ack_many(nc, handed, confirm=True)
        ack_pending, pending = await s.pending((0, 2000 - received))
        assert ack_pending == 0 and pending == 2000 - received
        await nc.drain()
        _no_other_tasks()

    asyncio.run(main())


def test_handler_error_is_counted_and_consuming_goes_on(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        s = await setup(nc)
        seen: list[Delivery] = []

        async def flaky(group: list[Delivery]) -> None:
            seen.extend(group)
            if len(seen) == len(group):
                raise RuntimeError("first group fails")
            await ack_many(nc, group)

        consumer = PullConsumer(nc, s.stream, s.durable, flaky)
        await consumer.start()
        await s.publish([b"a"])
        await wait_until(lambda: len(seen) == 1, what="a")
        await s.publish([b"b"])
        await wait_until(lambda: len(seen) == 2, what="b")
        await consumer.stop()
        assert consumer.stats.handler_errors == 1
        await nc.drain()

    asyncio.run(main())


def test_invalid_settings():
    with pytest.raises(ValueError, match="heartbeat"):
        PullConsumer(None, "S", "d", print, expires=1.0, heartbeat=0.6)
    with pytest.raises(ValueError, match="batch"):
        PullConsumer(None, "S", "d", print, batch=0)
