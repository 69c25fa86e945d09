"""JsPublisher against a real nats-server: PubAck window, dedup, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from processor.stream import frames
from processor.stream.publisher import JsPublisher, PublishError
from tests.integration.nats_server import connect, unique

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True, params=["frames", "nats-py"])
def message_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with PubAcks on both paths: the frame splitter and nats-py's callback."""
    if request.param == "nats-py":
        monkeypatch.setattr(frames, "install", lambda nc: None)
    return str(request.param)


async def _stream(nc: Any, **config: Any) -> tuple[Any, str]:
    js = nc.jetstream()
    name = unique("PUB")
    await js.add_stream(name=name, subjects=[f"{name}.>"], **config)
    return js, name


async def _messages(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


def test_publishes_everything_within_the_window(nats_url: str, message_path: str):
    async def main() -> None:
        nc = await connect(nats_url)
        js, stream = await _stream(nc)
        publisher = JsPublisher(js, window=10)
        items = [(f"{stream}.{i % 3}", b"%d" % i, None) for i in range(500)]
        await publisher.publish_all(items)
        # on the frame path nats-py's subscription never sees a PubAck
        assert (publisher._sub._received == 0) == (message_path == "frames")
        assert await _messages(js, stream) == 500
        assert publisher.stats.max_outstanding == 10  # reached, never exceeded
        assert (publisher.stats.published, publisher.stats.acked) == (500, 500)
        assert publisher.outstanding == 0
        first = await js.get_msg(stream, 1)
        assert (first.subject, first.data, first.headers) == (f"{stream}.0", b"0", None)
        await publisher.close()
        await nc.drain()

    asyncio.run(main())


def test_msg_id_dedup(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        js, stream = await _stream(nc, duplicate_window=60)
        publisher = JsPublisher(nc)  # a plain connection works too
        await publisher.publish_all(
            [(f"{stream}.a", b"one", "id-1"), (f"{stream}.a", b"1", "id-1")]
        )
        await publisher.publish_all(
            [(f"{stream}.a", b"again", "id-1"), (f"{stream}.b", b"2", None)]
        )
        assert await _messages(js, stream) == 2
        assert publisher.stats.duplicates == 2
        stored = await js.get_msg(stream, 1)
        assert stored.data == b"one" and stored.headers["Nats-Msg-Id"] == "id-1"
        await publisher.close()
        await nc.drain()

    asyncio.run(main())


def test_no_stream_for_the_subject_is_a_retriable_error(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        js, stream = await _stream(nc)
        publisher = JsPublisher(js, timeout=2.0)
        nowhere = unique("nostream")
        items = [(f"{stream}.ok", b"x", None), (nowhere, b"y", None), (nowhere, b"z", None)]
        with pytest.raises(PublishError, match="2 of 3 JetStream publishes failed: no stream") as e:
            await publisher.publish_all(items)
        assert e.value.retriable and e.value.failed == 2 and e.value.total == 3
        assert await _messages(js, stream) == 1
        assert publisher.outstanding == 0
        await publisher.close()
        await nc.drain()

    asyncio.run(main())


def test_error_pub_ack_names_the_reason(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        js, stream = await _stream(nc, max_msg_size=10)
        publisher = JsPublisher(js)
        with pytest.raises(PublishError, match=r"1 of 2 .*size exceeds maximum.*10054"):
            await publisher.publish_all(
                [(f"{stream}.a", b"small", None), (f"{stream}.a", b"x" * 64, None)]
            )
        assert await _messages(js, stream) == 1
        await publisher.close()
        await nc.drain()

    asyncio.run(main())


def test_concurrent_calls_share_the_window(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        js, stream = await _stream(nc)
        publisher = JsPublisher(js, window=16)
        batches = [[(f"{stream}.{b}", b"%d" % i, f"{b}-{i}") for i in range(200)] for b in range(5)]
        await asyncio.gather(*(publisher.publish_all(batch) for batch in batches))
        assert await _messages(js, stream) == 1000
        assert publisher.stats.max_outstanding == 16
        await publisher.close()
        await nc.drain()

    asyncio.run(main())


def test_missing_pub_acks_time_out(nats_url: str):
    async def main() -> None:
        nc = await connect(nats_url)
        js, stream = await _stream(nc)
        publisher = JsPublisher(js, window=4, timeout=0.5)
        # a plain subscriber on the subject (no JetStream) swallows the messages: no PubAck
        silent = unique("silent")
        sub = await nc.subscribe(silent)
        with pytest.raises(PublishError, match="no PubAck") as e:
            await publisher.publish_all([(silent, b"x", None)] * 10)
        assert e.value.failed == 10
        assert publisher.outstanding == 0
        await publisher.publish_all([(f"{stream}.a", b"fine", None)])  # still usable
        await sub.unsubscribe()
        await publisher.close()
        await nc.drain()

    asyncio.run(main())
