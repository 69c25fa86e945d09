"""FrameSplitter in front of nats-py's real protocol parser, fed a protocol stream in pieces.

The client here is a recorder of what nats-py's parser calls on it (``_process_msg``,
``_process_ping``...): the parser is nats-py's own; the server's side of the protocol is covered by
``tests/integration/test_stream_consumer.py``, which runs every consumer test on both paths.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nats.errors import ProtocolError
from nats.protocol.parser import Parser

from processor.stream.frames import FrameSplitter, install

FAST = 7  # the registered subscription id


class Client:
    """Records what nats-py's parser hands to its client."""

    def __init__(self) -> None:
        self.stats = {"in_msgs": 0, "in_bytes": 0}
        self.calls: list[tuple[Any, ...]] = []
        self._ps = Parser(self)

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, hdr: Any):
        self.calls.append(("msg", sid, bytes(subject), bytes(reply), hdr, data))

    async def _process_ping(self) -> None:
        self.calls.append(("ping",))

    async def _process_pong(self) -> None:
        self.calls.append(("pong",))

    async def _process_info(self, info: dict[str, Any]) -> None:
        self.calls.append(("info", info))

    async def _process_err(self, err: str) -> None:
        self.calls.append(("err", err))

    async def _process_headers(self, hdr: bytes) -> dict[str, str]:
        return {}


def msg(sid: int, payload: bytes, reply: bytes = b"", subject: bytes = b"a.b") -> bytes:
    reply_part = b" " + reply if reply else b""
    return b"MSG %s %d%s %d\r\n%s\r\n" % (subject, sid, reply_part, len(payload), payload)


def hmsg(sid: int, hdr: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    reply_part = b" " + reply if reply else b""
    total = len(hdr) + len(payload)
    return b"HMSG x.y %d%s %d %d\r\n%s%s\r\n" % (sid, reply_part, len(hdr), total, hdr, payload)


HDR = b"NATS/1.0\r\nNats-Msg-Id: m1\r\n\r\n"
STATUS = b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\n\r\n"

#: A stream mixing every frame kind, both subscriptions, payloads holding protocol-like bytes.
STREAM = [
    b'INFO {"server_id":"s","max_payload":1048576}\r\n',
    msg(FAST, b"one", b"$JS.ACK.S.c.1.1.1.1.0"),
    b"PING\r\n",
    msg(3, b"other sub"),
    hmsg(FAST, HDR, b'{"k":"MSG 7 1\\r\\n"}', b"$JS.ACK.S.c.1.2.2.1.0"),
    b"+OK\r\n",
    hmsg(FAST, STATUS, b""),
    msg(FAST, b""),
    hmsg(3, HDR, b"h"),
    b"PONG\r\n",
    msg(FAST, b"x" * 5000 + b"\r\nPING\r\n", b"r"),
    b"-ERR 'Unknown Protocol Operation'\r\n",
]

EXPECTED_FAST = [
    (b"a.b", b"$JS.ACK.S.c.1.1.1.1.0", None, b"one"),
    (b"x.y", b"$JS.ACK.S.c.1.2.2.1.0", HDR, b'{"k":"MSG 7 1\\r\\n"}'),
    (b"x.y", b"", STATUS, b""),
    (b"a.b", b"", None, b""),
    (b"a.b", b"r", None, b"x" * 5000 + b"\r\nPING\r\n"),
]


def reference_calls(stream: bytes) -> list[tuple[Any, ...]]:
    """What nats-py's parser alone reports for ``stream`` (fed at once)."""
    client = Client()
    asyncio.run(client._ps.parse(stream))
    return client.calls


def run_split(chunks: list[bytes]) -> tuple[Client, list[tuple[Any, ...]]]:
    client = Client()
    fast: list[tuple[Any, ...]] = []

    async def handler(subject: bytes, reply: bytes, hdr: bytes | None, data: bytes) -> None:
        fast.append((subject, reply, hdr, data))

    async def main() -> None:
        splitter = install(client)
        assert isinstance(splitter, FrameSplitter)
        splitter.register(FAST, handler)
        for chunk in chunks:
            await client._ps.parse(chunk)

    asyncio.run(main())
    return client, fast


def _slow_calls() -> list[tuple[Any, ...]]:
    """The reference calls minus those of the registered subscription."""
    return [c for c in reference_calls(b"".join(STREAM)) if not (c[0] == "msg" and c[1] == FAST)]


def test_registered_frames_go_to_the_handler_and_the_rest_to_nats_py():
    client, fast = run_split([b"".join(STREAM)])
    assert fast == EXPECTED_FAST
    assert client.calls == _slow_calls()
    assert client.calls[0][0] == "info" and ("ping",) in client.calls
    fast_bytes = sum(len(f[3]) for f in EXPECTED_FAST)
    assert client.stats == {"in_msgs": len(EXPECTED_FAST), "in_bytes": fast_bytes}


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
def test_any_chunking_gives_the_same_frames(size: int):
    data = b"".join(STREAM)
    client, fast = run_split([data[i : i + size] for i in range(0, len(data), size)])
    assert fast == EXPECTED_FAST
    assert client.calls == _slow_calls()


@given(st.lists(st.integers(min_value=0, max_value=6000), max_size=12))
def test_arbitrary_split_points(cuts: list[int]):
    data = b"".join(STREAM)
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    client, fast = run_split([data[a:b] for a, b in itertools.pairwise(points)])
    assert fast == EXPECTED_FAST
    assert client.calls == _slow_calls()


@pytest.mark.parametrize("cut", [3, 20, 30, 60])
def test_takes_over_a_parser_holding_part_of_a_frame(cut: int):
    """Installed while nats-py's parser is mid-frame (in the control line or in the payload)."""
    first = msg(3, b"before the splitter" * 3)
    data = first + b"".join(STREAM)
    client = Client()
    fast: list[tuple[Any, ...]] = []

    async def handler(subject: bytes, reply: bytes, hdr: bytes | None, data: bytes) -> None:
        fast.append((subject, reply, hdr, data))

    async def main() -> None:
        await client._ps.parse(data[:cut])
        assert client._ps.buf  # mid-frame
        splitter = install(client)
        assert splitter is not None
        splitter.register(FAST, handler)
        await client._ps.parse(data[cut:])

    asyncio.run(main())
    assert fast == EXPECTED_FAST
    assert client.calls[0] == ("msg", 3, b"a.b", b"", None, b"before the splitter" * 3)
    assert client.calls[1:] == _slow_calls()


def test_unregistered_sid_goes_back_to_nats_py_and_reset_clears_both():
    client, fast = run_split([])
    splitter = client._ps
    assert isinstance(splitter, FrameSplitter)
    splitter.unregister(FAST)

    async def main() -> None:
        await splitter.parse(msg(FAST, b"now nats-py's") + b"MSG a.b 7 10\r\npart")
        splitter.reset()
        await splitter.parse(b"PING\r\n")

    asyncio.run(main())
    assert fast == []
    assert client.calls == [("msg", FAST, b"a.b", b"", None, b"now nats-py's"), ("ping",)]


def test_malformed_frames_get_nats_py_s_error():
    client, _ = run_split([])
    for bad in (b"MSG only-subject\r\n", b"HMSG a 1 2\r\n", b"NOPE\r\n"):
        with pytest.raises(ProtocolError):
            asyncio.run(client._ps.parse(bad))
        client._ps.reset()


def test_install_is_idempotent_and_declines_an_unknown_parser():
    client = Client()
    first = install(client)
    assert first is not None and install(client) is first

    class Other:
        def __init__(self) -> None:
            self.stats: dict[str, int] = {}
            self._ps = object()

    assert install(Other()) is None


def test_a_payload_over_many_reads_comes_whole_with_what_follows_it():
    """A message larger than a read, its header block cut too, then a frame in its last read."""
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = hmsg(FAST, HDR, payload, b"r") + b"PING\r\n" + msg(FAST, b"after")
    cuts = [0, 9, 40, *range(65536, len(data) - 3, 65536), len(data)]
    client, fast = run_split([data[a:b] for a, b in itertools.pairwise(cuts)])
    assert fast == [(b"x.y", b"r", HDR, payload), (b"a.b", b"", None, b"after")]
    assert client.calls == [("ping",)]
