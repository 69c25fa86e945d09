"""The Kafka record-set decoder, twin (``processor/kafka/batches.py``, the specification) and
native (``_native/kafkabatch.pyx``), against aiokafka's own reader and fetcher.

Record sets are built with aiokafka's ``DefaultRecordBatchBuilder`` for every codec; the
expected deliveries are those aiokafka's ``PartitionRecords`` (``MemoryRecords`` -> batches ->
records, the fetcher's offset rules) yields for the same bytes. Malformed batches are written
byte by byte; for them the twin's reasons are the specification and the native module must give
the same ones. The native run fails, not skips, under ``PROCESSOR_REQUIRE_EXTENSIONS=1``.
"""

from __future__ import annotations

import ctypes
import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.kafka import batches as twin
from processor.native import ExtensionMissingError, require

IMPLEMENTATIONS = ["python", "native"]
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
TOPIC = "audit-events"
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]
Out = tuple[list[tuple[int, bytes | None, bytes | None]], int, str]


@dataclass(slots=True)
class Chunk:
    """The transport's chunk (``processor.kafka.transport.Chunk``): offsets ``[first, end)``."""

    first: int
    end: int
    left: int


def native_module() -> ModuleType:
    """``processor._native.kafkabatch``; skipped when not built (failed under
    ``PROCESSOR_REQUIRE_EXTENSIONS=1``) or when ``PROCESSOR_NO_EXTENSIONS=1``."""
    if os.environ.get("PROCESSOR_NO_EXTENSIONS") == "1":
        pytest.skip("PROCESSOR_NO_EXTENSIONS=1: the twin only")
    try:
        return require("kafkabatch")
    except ExtensionMissingError as exc:
        if os.environ.get("PROCESSOR_REQUIRE_EXTENSIONS") == "1":
            pytest.fail(f"native extension required but not built: {exc}")
        pytest.skip(f"native extension not built (pip install -e . builds it): {exc}")


def module_of(name: str) -> ModuleType:
    return twin if name == "python" else native_module()


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """The twin, then the native module."""
    return module_of(request.param)


@pytest.fixture
def python_codecs() -> Iterator[ModuleType]:
    """The native module with its library codecs switched off (aiokafka's Python codecs)."""
    mod = native_module()
    mod._force_python_codecs(True)
    try:
        yield mod
    finally:
        mod._force_python_codecs(False)


# --- building record sets -------------------------------------------------------------------


def batch(
    records: Sequence[Record],
    codec: str = "none",
    base: int = 0,
    *,
    control: bool = False,
    deltas: Sequence[int] | None = None,
) -> bytes:
    """One v2 batch of ``records`` at ``base`` built by aiokafka (offset deltas 0..n-1 unless
    ``deltas``); ``control`` sets the control bit (and the CRC again)."""
    builder = DefaultRecordBatchBuilder(2, CODECS[codec], 0, -1, -1, -1, 1 << 30)
    for i, (key, value, headers) in enumerate(records):
        delta = deltas[i] if deltas is not None else i
        builder.append(delta, 1_700_000_000_000 + i, key, value, headers)
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base)
    if control:
        struct.pack_into(">h", data, 21, struct.unpack_from(">h", data, 21)[0] | 0x20)
        struct.pack_into(">I", data, 17, calc_crc32c(bytes(data[21:])))
    return bytes(data)


def varint(value: int) -> bytes:
    """Kafka's zigzag varint."""
    v = (value << 1) ^ (value >> 63)
    out = bytearray()
    while v > 0x7F:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    out.append(v)
    return bytes(out)


def record_bytes(
    offset_delta: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[bytes, bytes | None]] = (),
) -> bytes:
    """One record's fields (without its length)."""
    out = b"\x00" + varint(0) + varint(offset_delta)
    for field in (key, value):
        out += varint(-1) if field is None else varint(len(field)) + field
    out += varint(len(headers))
    for hkey, hval in headers:
        out += varint(len(hkey)) + hkey + (varint(-1) if hval is None else varint(len(hval)) + hval)
    return out


def raw_batch(
    body: bytes, count: int, base: int = 0, attributes: int = 0, last_delta: int | None = None
) -> bytes:
    """A v2 batch written by hand around ``body`` (the records, compressed or not)."""
    last = count - 1 if last_delta is None else last_delta
    after_crc = struct.pack(">hiqqqhii", attributes, last, 0, 0, -1, -1, -1, count) + body
    head = struct.pack(">qiib", base, 4 + 1 + 4 + len(after_crc), -1, 2)
    return head + struct.pack(">I", calc_crc32c(after_crc)) + after_crc


def framed(fields: bytes) -> bytes:
    return varint(len(fields)) + fields


def records_of(n: int, size: int = 10, seed: int = 0) -> list[Record]:
    """``n`` records with keys (some None), values of about ``size`` bytes (some None or
    empty) and, on some, headers."""
    out: list[Record] = []
    for i in range(n):
        key = None if i % 7 == 3 else f"ns/obj-{seed}-{i}".encode()
        value: bytes | None = bytes((seed + i + j) % 251 for j in range(size + i % 5))
        if i % 11 == 5:
            value = None
        elif i % 13 == 6:
            value = b""
        headers: list[tuple[str, bytes | None]] = [("subject", b"s"), ("x", None)] if i % 4 else []
        out.append((key, value, headers))
    return out


# --- the reference and the calls ------------------------------------------------------------


def reference(data: bytes, fetch_offset: int = 0, check_crcs: bool = True) -> list[Any]:
    """What aiokafka's fetcher yields for ``data``: (offset, key, value) each, less any offset
    not above those before it or below ``fetch_offset`` (aiokafka's fetcher may deliver such
    offsets when a batch's last offset is below the fetch offset: see the twin)."""
    tp = TopicPartition(TOPIC, 3)
    records = PartitionRecords(
        tp, MemoryRecords(data), [], fetch_offset, None, None, check_crcs, READ_UNCOMMITTED
    )
    out: list[Any] = []
    for r in records:
        if r.offset >= fetch_offset and (not out or r.offset > out[-1][0]):
            out.append((r.offset, r.key, r.value))
    return out


def run(mod: ModuleType, data: bytes, fetch_offset: int = 0, check_crcs: bool = True) -> Out:
    """``mod.decode`` as plain tuples, with its chunk checked."""
    deliveries, corrupt_at, reason = mod.decode(data, fetch_offset, TOPIC, 3, check_crcs, Chunk)
    assert isinstance(deliveries, list)
    if deliveries:
        chunk = deliveries[0].chunk
        assert chunk == Chunk(deliveries[0].offset, deliveries[-1].offset + 1, len(deliveries))
        for d in deliveries:
            assert type(d) is mod.KafkaDelivery
            assert d.chunk is chunk
            assert (d.topic, d.partition) == (TOPIC, 3)
    return [(d.offset, d.key, d.data) for d in deliveries], corrupt_at, reason


def native_if_built() -> ModuleType | None:
    """The native module; None when it is not built and not required, or the twin is forced."""
    if os.environ.get("PROCESSOR_NO_EXTENSIONS") == "1":
        return None
    try:
        return require("kafkabatch")
    except ExtensionMissingError:
        if os.environ.get("PROCESSOR_REQUIRE_EXTENSIONS") == "1":
            raise
        return None


def same_everywhere(data: bytes, fetch_offset: int = 0, check_crcs: bool = True) -> Out:
    """The twin's result, after checking the native module (both codec branches) gives it."""
    expected = run(twin, data, fetch_offset, check_crcs)
    mod = native_if_built()
    if mod is not None:
        assert run(mod, data, fetch_offset, check_crcs) == expected
        assert mod.scan(data) == twin.scan(data)
        mod._force_python_codecs(True)
        try:
            assert run(mod, data, fetch_offset, check_crcs) == expected
        finally:
            mod._force_python_codecs(False)
    return expected


# --- well-formed record sets ----------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("n", [1, 2, 37, 500])
def test_codec_matches_aiokafka(impl: ModuleType, codec: str, n: int) -> None:
    data = batch(records_of(n, seed=n), codec, base=1000)
    assert impl.scan(data) == 1000 + n
    got = run(impl, data)
    assert got == (reference(data), -1, "")
    assert len(got[0]) == n


@pytest.mark.parametrize("codec", CODECS)
def test_large_values(impl: ModuleType, codec: str) -> None:
    records: list[Record] = [(b"k", os.urandom(100_000), []), (None, b"x" * 100_000, [])]
    records += records_of(3, size=60_000)
    data = batch(records, codec, base=5)
    assert run(impl, data) == (reference(data), -1, "")


def test_concatenated_batches_and_truncated_tail(impl: ModuleType) -> None:
    parts = []
    base = 0
    for i, codec in enumerate([*CODECS, "zstd", "none"]):
        n = 3 + 17 * i
        parts.append(batch(records_of(n, seed=i), codec, base=base))
        base += n
    data = b"".join(parts)
    full = reference(data)
    assert len(full) == base
    assert impl.scan(data) == base
    assert run(impl, data) == (full, -1, "")
    cut = data[: len(data) - 7]  # the last batch truncated: ignored
    last = len(records_of(3 + 17 * 6))
    assert impl.scan(cut) == base - last
    assert run(impl, cut) == (full[:-last], -1, "")


def test_nothing_complete(impl: ModuleType) -> None:
    data = batch(records_of(4), "none", base=7)
    for cut in (b"", data[:11], data[:12], data[:61], data[:-1]):
        assert impl.scan(cut) == -1
        deliveries, corrupt_at, reason = impl.decode(cut, 0, TOPIC, 3, True, _no_chunk)
        assert (deliveries, corrupt_at, reason) == ([], -1, "")


def _no_chunk(*args: Any) -> Any:
    raise AssertionError("chunk_type called with no record delivered")


@pytest.mark.parametrize("codec", ["none", "gzip", "lz4", "zstd"])
def test_fetch_offset_inside_a_batch(impl: ModuleType, codec: str) -> None:
    data = batch(records_of(20), codec, base=100) + batch(records_of(5, seed=2), codec, base=120)
    for fetch in (0, 100, 101, 113, 119, 120, 122, 124, 125, 200):
        got = run(impl, data, fetch)
        assert got == (reference(data, fetch), -1, ""), fetch
        assert [o for o, _, _ in got[0]] == list(range(max(fetch, 100), 125))


def test_control_batch_skipped(impl: ModuleType) -> None:
    marker: list[Record] = [(b"\x00\x00\x00\x00", b"\x00\x00\x00\x00\x00\x00", [])]
    data = (
        batch(records_of(3), "none", base=0)
        + batch(marker, "none", base=3, control=True)
        + batch(records_of(2, seed=1), "zstd", base=4)
    )
    got = run(impl, data)
    assert got == (reference(data), -1, "")
    assert [o for o, _, _ in got[0]] == [0, 1, 2, 4, 5]
    only = batch(marker, "none", base=9, control=True)
    assert impl.scan(only) == 10
    assert impl.decode(only, 0, TOPIC, 3, True, _no_chunk) == ([], -1, "")


def test_offsets_not_increasing(impl: ModuleType) -> None:
    """A record below the next expected offset (after the last one delivered, after the last
    offset of every batch before) is skipped."""
    data = (
        batch(records_of(4), "none", base=0, deltas=[0, 2, 1, 5])  # last offset 5
        + batch(records_of(3, seed=1), "gzip", base=3)  # 3-5 below 6
        + raw_batch(b"", 0, base=20, last_delta=9)  # nothing up to 29
        + batch(records_of(4, seed=2), "none", base=27)  # 27-29 below 30
    )
    got = run(impl, data)
    assert [o for o, _, _ in got[0]] == [0, 2, 5, 30]
    assert got == (reference(data), -1, "")
    assert [o for o, _, _ in run(impl, data, 3)[0]] == [5, 30]


def test_empty_batch(impl: ModuleType) -> None:
    data = raw_batch(b"", 0, base=4, last_delta=2) + batch(records_of(2), base=7)
    assert impl.scan(data) == 9
    assert run(impl, data) == (reference(data), -1, "")


def test_legacy_format_unsupported(impl: ModuleType) -> None:
    for magic in (0, 1):
        builder = LegacyRecordBatchBuilder(magic, 0, 1 << 20)
        for i in range(3):
            builder.append(i, 1_700_000_000_000 if magic else None, b"k", b"value")
        legacy = bytes(builder.build())
        for data in (legacy, batch(records_of(2)) + legacy):
            with pytest.raises(impl.UnsupportedBatch):
                impl.scan(data)
            with pytest.raises(impl.UnsupportedBatch):
                impl.decode(data, 0, TOPIC, 3, True, Chunk)
    assert impl.UnsupportedBatch is twin.UnsupportedBatch


def test_delivery_class(impl: ModuleType) -> None:
    chunk = Chunk(1, 2, 1)
    d = impl.KafkaDelivery(b"v", "t", 2, 1, None, chunk)
    assert (d.data, d.topic, d.partition, d.offset, d.key, d.chunk) == (
        b"v",
        "t",
        2,
        1,
        None,
        chunk,
    )
    d.chunk = None
    assert d.chunk is None
    assert d == impl.KafkaDelivery(b"v", "t", 2, 1, None, None)
    assert d != impl.KafkaDelivery(b"w", "t", 2, 1, None, None)
    assert repr(d) == repr(twin.KafkaDelivery(b"v", "t", 2, 1, None, None))


# --- corrupt record sets --------------------------------------------------------------------


def test_crc_mismatch_in_second_batch(impl: ModuleType) -> None:
    first = batch(records_of(5), "zstd", base=0)
    second = bytearray(batch(records_of(4, seed=1), "none", base=5))
    second[-1] ^= 0x01
    data = first + bytes(second) + batch(records_of(2, seed=2), base=9)
    deliveries, corrupt_at, reason = run(impl, data)
    assert deliveries == reference(first)
    assert corrupt_at == 5
    assert reason.startswith("CRC mismatch: header 0x")
    assert run(impl, data) == same_everywhere(data)
    with pytest.raises(CorruptRecordException):
        reference(data)
    # unchecked, the flipped byte is in a value: everything is delivered
    assert run(impl, data, check_crcs=False) == (reference(data, check_crcs=False), -1, "")


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_garbage_compressed_payload(impl: ModuleType, codec: str) -> None:
    good = batch(records_of(3), "none", base=0)
    for garbage in (b"\xde\xad\xbe\xef" * 16, batch(records_of(3), codec)[61:-4]):
        data = good + raw_batch(garbage, 3, base=3, attributes=CODECS[codec])
        assert run(impl, data) == (reference(good), 3, f"{codec} decompression failed")
    for garbage in (b"", b"\x00"):  # some codecs read these as nothing: then no record
        data = good + raw_batch(garbage, 3, base=3, attributes=CODECS[codec])
        deliveries, corrupt_at, _ = same_everywhere(data)
        assert (deliveries, corrupt_at) == (reference(good), 3)


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_unknown_codec(impl: ModuleType, codec: int) -> None:
    data = raw_batch(framed(record_bytes(0, b"k", b"v")), 1, base=8, attributes=codec)
    assert run(impl, data) == ([], 8, f"unknown compression codec {codec}")


GOOD = framed(record_bytes(0, b"key", b"value"))
BIG = (1 << 64) - 1

MALFORMED: dict[str, tuple[bytes, int, str]] = {
    # name: (records bytes, recordCount, reason)
    "record past batch": (
        varint(100) + b"\x00" * 10,
        1,
        "record 0 of 1: length 100 runs past the batch",
    ),
    "negative length": (varint(-2) + GOOD, 1, "record 0 of 1: length -2 runs past the batch"),
    "length varint cut": (GOOD + b"\x80", 2, "record 1 of 2 runs past the batch"),
    "fewer records": (GOOD + GOOD, 3, "record 2 of 3 runs past the batch"),
    "more bytes": (GOOD + GOOD, 1, f"{len(GOOD)} bytes left after 1 records"),
    "negative count": (GOOD, -1, f"{len(GOOD)} bytes left after 0 records"),
    "key length": (
        framed(b"\x00\x00\x00" + varint(-2) + varint(-1) + b"\x00"),
        1,
        "record 0 of 1: key length -2",
    ),
    "value length": (
        framed(b"\x00\x00\x00" + varint(-1) + varint(-7) + b"\x00"),
        1,
        "record 0 of 1: value length -7",
    ),
    "header count": (
        framed(b"\x00\x00\x00" + varint(-1) + varint(-1) + varint(-1)),
        1,
        "record 0 of 1: header count -1",
    ),
    "header key length": (
        framed(record_bytes(0, None, b"v")[:-1] + varint(1) + varint(-1)),
        1,
        "record 0 of 1: header key length -1",
    ),
    "header value length": (
        framed(record_bytes(0, None, b"v")[:-1] + varint(1) + varint(1) + b"h" + varint(-2)),
        1,
        "record 0 of 1: header value length -2",
    ),
    "key past record": (
        framed(b"\x00\x00\x00" + varint(50) + b"abc"),
        1,
        "record 0 of 1: fields run past its length 7",
    ),
    "header past record": (
        framed(record_bytes(0, None, b"v")[:-1] + varint(3)),
        1,
        "record 0 of 1: fields run past its length 7",
    ),
    "empty record": (varint(0), 1, "record 0 of 1: fields run past its length 0"),
    "length over fields": (
        framed(record_bytes(0, b"k", b"v") + b"\x00"),
        1,
        "record 0 of 1: length 9 but its fields use 8 bytes",
    ),
    "varint 11 bytes": (
        framed(b"\x00" + b"\xff" * 10 + b"\x00" + b"\x00\x01\x01\x00"),
        1,
        "record 0 of 1: varint longer than 10 bytes",
    ),
    "varint over 64 bits": (
        framed(b"\x00" + b"\xff" * 9 + b"\x02" + b"\x00\x01\x01\x00"),
        1,
        "record 0 of 1: varint over 64 bits",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_malformed_records(impl: ModuleType, case: str, codec: str) -> None:
    body, count, reason = MALFORMED[case]
    if codec != "none":
        from aiokafka.codec import zstd_encode

        body = zstd_encode(body)
    good = batch(records_of(2), "none", base=0)
    data = (
        good
        + raw_batch(body, count, base=2, attributes=CODECS[codec])
        + batch(records_of(2), base=3)
    )
    assert run(impl, data) == (reference(good), 2, reason)


def test_largest_varint_accepted(impl: ModuleType) -> None:
    """A 10-byte varint of 64 bits (a timestamp delta) is a value, not corruption."""
    fields = b"\x00" + b"\xff" * 9 + b"\x01" + varint(0) + varint(-1) + varint(1) + b"v\x00"
    data = raw_batch(framed(fields), 1, base=4)
    assert run(impl, data) == (reference(data), -1, "")


def test_offset_out_of_range(impl: ModuleType) -> None:
    top = (1 << 63) - 1
    data = raw_batch(framed(record_bytes(2, None, b"v")), 1, base=top - 1, last_delta=0)
    assert run(impl, data) == ([], top - 1, "record 0 of 1: offset out of range")


def test_short_batch_length(impl: ModuleType) -> None:
    good = batch(records_of(3), "lz4", base=0)
    short = struct.pack(">qiib", 3, 20, -1, 2) + b"\x00" * 15
    data = good + short + batch(records_of(2), base=4)
    assert impl.scan(data) == 3
    assert run(impl, data) == (reference(good), 3, "batch length 20 below the header's 49 bytes")
    negative = struct.pack(">qi", 3, -5) + b"\x00" * 40
    assert impl.scan(negative) == -1
    assert run(impl, negative) == ([], 3, "batch length -5 below the header's 49 bytes")


def test_truncation_at_every_byte(impl: ModuleType) -> None:
    parts = [
        batch(records_of(3), "none", base=0),
        batch(records_of(2, seed=1), "zstd", base=3),
        batch([(b"k", b"v", [("h", b"x")])], "none", base=5),
    ]
    data = b"".join(parts)
    ends = [sum(len(p) for p in parts[: i + 1]) for i in range(len(parts))]
    for n in range(len(data) + 1):
        complete = max([e for e in ends if e <= n], default=0)
        assert run(impl, data[:n]) == (reference(data[:complete]), -1, ""), n
        assert impl.scan(data[:n]) == twin.scan(data[:complete])


def test_hostile_bytes_do_not_crash(impl: ModuleType) -> None:
    """Every single-byte change of a small set gives a result (corrupt or not), never a crash,
    and the same one from both implementations (the native one with aiokafka's codecs: libzstd
    1.5.4 accepts some changed bytes of a frame without checksum that cramjam's newer zstd
    refuses; with check_crcs the CRC refuses them all)."""
    first = batch(records_of(3), "none", base=0)
    data = first + batch(records_of(2), "zstd", base=3)
    payload = range(len(first) + 61, len(data))
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            mutated = bytearray(data)
            mutated[i] ^= flip
            expected = outcome(twin, bytes(mutated))
            got = outcome(impl, bytes(mutated))
            if impl is twin:
                continue
            if i in payload:
                assert got[1][0][:3] == expected[1][0][:3], (i, flip)
                impl._force_python_codecs(True)
                try:
                    got = outcome(impl, bytes(mutated))
                finally:
                    impl._force_python_codecs(False)
            assert got == expected, (i, flip)


def outcome(mod: ModuleType, data: bytes) -> Any:
    """``mod``'s scan and unchecked decode of ``data``, or the legacy-format refusal."""
    try:
        return mod.scan(data), run(mod, data, check_crcs=False)
    except twin.UnsupportedBatch as exc:
        return "unsupported", str(exc)


# --- generated record sets ------------------------------------------------------------------

blob = st.binary(max_size=300)
header = st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=20))
record = st.tuples(st.none() | blob, st.none() | blob, st.lists(header, max_size=3))
generated_batch = st.tuples(
    st.lists(record, min_size=1, max_size=30), st.sampled_from(list(CODECS))
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(generated_batch, min_size=1, max_size=4),
    fetch_skip=st.integers(0, 40),
    cut=st.integers(0, 100),
)
def test_generated(batches: list[tuple[list[Record], str]], fetch_skip: int, cut: int) -> None:
    parts = []
    base = 50
    for records, codec in batches:
        parts.append(batch(records, codec, base=base))
        base += len(records)
    data = b"".join(parts)
    data = data[: len(data) - cut]
    fetch = 50 + fetch_skip
    assert same_everywhere(data, fetch) == (reference(data, fetch), -1, "")


# --- the native module's own parts ----------------------------------------------------------


def _loadable(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def test_codecs() -> None:
    mod = native_module()
    assert twin.codecs() == dict.fromkeys(["gzip", "snappy", "lz4", "zstd"], "python")
    found = mod.codecs()
    assert found.keys() == twin.codecs().keys()
    assert found["gzip"] == found["snappy"] == "python"
    for name, soname in (("zstd", "libzstd.so.1"), ("lz4", "liblz4.so.1")):
        assert found[name] == (f"{soname} (nogil)" if _loadable(soname) else "python")
    mod._force_python_codecs(True)
    try:
        assert mod.codecs() == twin.codecs()
    finally:
        mod._force_python_codecs(False)
    assert mod.codecs() == found


@pytest.mark.parametrize("codec", CODECS)
def test_codec_branches_identical(python_codecs: ModuleType, codec: str) -> None:
    data = batch(records_of(300, size=200), codec, base=9) + batch(records_of(40), codec, base=309)
    forced = run(python_codecs, data)
    python_codecs._force_python_codecs(False)
    assert run(python_codecs, data) == forced == (reference(data), -1, "")


def _zstd_streamed(body: bytes) -> bytes:
    import cramjam

    compressor = cramjam.zstd.Compressor()
    compressor.compress(body[: len(body) // 3])
    compressor.compress(body[len(body) // 3 :])
    return bytes(compressor.finish())


def _lz4_linked(body: bytes) -> bytes:
    import cramjam

    compressor = cramjam.lz4.Compressor(content_checksum=True, block_linked=True)
    compressor.compress(body)
    return bytes(compressor.finish())


def _two_frames(encode: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    return lambda body: encode(body[:1000]) + encode(body[1000:])


@pytest.mark.parametrize(
    ("codec", "framing"),
    [
        ("zstd", "one frame, content size"),
        ("zstd", "streamed, no content size"),
        ("zstd", "two frames"),
        ("lz4", "one frame"),
        ("lz4", "linked blocks, checksum"),
        ("lz4", "two frames"),
    ],
)
def test_library_framings(python_codecs: ModuleType, codec: str, framing: str) -> None:
    """The framings producers write (Java streams zstd without a content size), and output
    far larger than its input (the output buffer grows), decoded alike by both branches."""
    from aiokafka.codec import lz4_encode, zstd_encode

    encode = {
        "one frame, content size": zstd_encode,
        "streamed, no content size": _zstd_streamed,
        "one frame": lz4_encode,
        "linked blocks, checksum": _lz4_linked,
        "two frames": _two_frames(zstd_encode if codec == "zstd" else lz4_encode),
    }[framing]
    records: list[Record] = [(b"k", b"a" * 300_000, []), *records_of(50, size=3000)]
    plain = batch(records, "none", base=40)
    count = len(records)
    data = raw_batch(encode(plain[61:]), count, base=40, attributes=CODECS[codec])
    assert len(data) * 10 < len(plain)
    expected = (reference(plain), -1, "")
    assert run(twin, data) == expected
    assert run(python_codecs, data) == expected
    python_codecs._force_python_codecs(False)
    assert run(python_codecs, data) == expected


def test_crc_forms_agree() -> None:
    """The SSE4.2 CRC-32C and the table give aiokafka's CRC at every length and alignment."""
    mod = native_module()
    blob = os.urandom(80_000)
    lengths = (0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 767, 768, 769, 1000, 4000, 24_575, 24_576)
    for start in range(9):
        for n in (*lengths, 24_577, 50_000, 3 * 24_576 + 3 * 256 + 13):
            piece = blob[start : start + n]
            expected = calc_crc32c(piece)
            assert mod._crc32c(piece, True) == expected
            assert mod._crc32c(piece, False) == expected


def test_threads_decode_at_once() -> None:
    """Two threads decoding large zstd sets at once (the GIL released) get correct results."""
    mod = native_module()
    sets = []
    for t in range(2):
        data = b"".join(
            batch(records_of(250, size=2000, seed=t * 10 + i), "zstd", base=250 * i)
            for i in range(8)
        )
        sets.append((data, reference(data)))
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(data: bytes, expected: list[Any]) -> None:
        try:
            start.wait()
            for _ in range(5):
                assert run(mod, data) == (expected, -1, "")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=s) for s in sets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
