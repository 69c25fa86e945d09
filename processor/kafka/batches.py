"""Kafka record sets (the ``records`` field of a Fetch response) decoded into deliveries.

This module is the specification (the pure-Python twin) of ``processor._native.kafkabatch``:
same functions, same results, same reasons. The intake (:mod:`processor.kafka.intake`) hands
each partition's fetched bytes to :func:`decode` on a decode thread instead of letting aiokafka
build a ``ConsumerRecord`` per record on the event loop.

**Format.** A record set is zero or more v2 RecordBatches, the last possibly truncated (the
broker cuts a fetch at its byte limit). A batch is a 61-byte header (below), then
``recordCount`` records, compressed together when ``attributes & 7`` names a codec::

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32
    | attributes int16 | lastOffsetDelta int32 | firstTimestamp int64 | maxTimestamp int64
    | producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32

    record: length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
            | keyLength varint | key | valueLength varint | value
            | headerCount varint | (keyLength varint | key | valueLength varint | value)*

Varints are zigzag-encoded (at most 10 bytes, 64 bits); a length of -1 is None.

**Rules** (those of aiokafka's reader and fetcher, ``MemoryRecords`` and ``PartitionRecords``):

- a batch is complete when ``12 + batchLength`` bytes are left; the first incomplete one ends the
  set (it is fetched again); a ``batchLength`` below 49 (the header after its first 12 bytes)
  is corrupt;
- a magic other than 2 (0/1: the legacy format) raises :class:`UnsupportedBatch`: the caller
  reads that set with aiokafka's own path;
- with ``check_crcs``, the CRC-32C of the bytes from ``attributes`` to the batch end must be the
  header's ``crc``;
- control batches (``attributes`` bit 5: transaction markers) carry no data and are skipped;
- a record is delivered when its offset (``baseOffset + offsetDelta``) is at least the next
  offset expected: first ``fetch_offset``, then the offset after the record delivered last, and
  after each batch at least ``baseOffset + lastOffsetDelta + 1`` (a compressed batch comes whole
  from its start, so a fetch in its middle skips its head). The offsets delivered therefore
  increase and none is below ``fetch_offset`` (aiokafka's fetcher sets the next offset to the
  batch's even when that is lower, and may then deliver an offset again);
- the first corrupt batch (a CRC mismatch, an unknown codec, a decompression failure, a malformed
  record, bytes left over after ``recordCount`` records) ends the decode: its offset and the
  reason are returned with the records of the batches before it; none of its own records is.

Where this module is stricter than aiokafka: a varint over 64 bits, and an offset outside the
int64 range, are corrupt (aiokafka computes them with Python's unbounded integers). Where it is
laxer: a header key that is not UTF-8 is accepted (headers are skipped, aiokafka decodes them).
A record's ``attributes`` is one byte (Kafka's format; aiokafka reads a varint there, the same
for every attributes value below 128, and producers write 0).

**Decompression.** gzip, snappy (Kafka's xerial framing), lz4 (frame format) and zstd through
aiokafka's own codec functions; the native module decompresses zstd and lz4 with libzstd and
liblz4 without the GIL. The output of one batch is bounded by :data:`MAX_DECOMPRESSED`. The
libraries give the same records for every valid frame; on a damaged frame without a content
checksum they may differ (libzstd 1.5.4 accepts some damaged bytes that cramjam's newer zstd
refuses): the batch's CRC, checked by default, refuses those first.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CODECS",
    "HEADER_SIZE",
    "MAX_DECOMPRESSED",
    "KafkaDelivery",
    "UnsupportedBatch",
    "batch_span",
    "codecs",
    "decode",
    "scan",
]

#: Bytes of a batch header (through ``recordCount``); ``batchLength`` counts from byte 12.
HEADER_SIZE = 61
#: Bytes before ``batchLength``'s count starts (``baseOffset``, ``batchLength``).
LOG_OVERHEAD = 12
#: Where ``attributes`` starts: the CRC covers the batch from here.
ATTRIBUTES_AT = 21
#: The largest decompressed size of one batch (a broker's batch is at most a few MB).
MAX_DECOMPRESSED = 1 << 30
#: ``attributes & 7`` -> codec name.
CODECS = {1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

CONTROL = 0x20
_HEADER = struct.Struct(">qiibIhiqqqhii")
_LENGTH = struct.Struct(">qi")
_MAGIC_AT = 16
_INT64 = (-(1 << 63), (1 << 63) - 1)


class UnsupportedBatch(Exception):
    """A complete batch of magic 0/1 (legacy format; or any magic but 2): the caller uses
    aiokafka's path."""


@dataclass(slots=True)
class KafkaDelivery:
    """One Kafka input record as the pipeline sees it (:class:`~processor.transport.Message`).

    ``chunk`` is shared by the deliveries of one decode (the transport's ``Chunk``): the
    transport counts them settled there.
    """

    data: bytes | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    chunk: Any


class _Corrupt(Exception):
    """A malformed batch: the reason (``args[0]``)."""


def codecs() -> dict[str, str]:
    """Codec name -> what decompresses it here (the twin: aiokafka's Python codecs)."""
    return {name: "python" for name in CODECS.values()}


def _headers(data: bytes) -> tuple[int, list[tuple[int, int, int]], str]:
    """Walk the complete batches: (offset after the last complete one or -1, their
    ``(start, end, base_offset)``, why the walk stopped early or "")."""
    size = len(data)
    pos = 0
    after = -1
    found: list[tuple[int, int, int]] = []
    while size - pos >= LOG_OVERHEAD:
        base, length = _LENGTH.unpack_from(data, pos)
        if LOG_OVERHEAD + length > size - pos:
            break
        if length >= _MAGIC_AT + 1 - LOG_OVERHEAD and data[pos + _MAGIC_AT] != 2:
            raise UnsupportedBatch(
                f"batch at offset {base} has magic {data[pos + _MAGIC_AT]}, not 2"
            )
        if length < HEADER_SIZE - LOG_OVERHEAD:
            return after, found, f"batch length {length} below the header's 49 bytes"
        end = pos + LOG_OVERHEAD + length
        found.append((pos, end, base))
        after = base + _HEADER.unpack_from(data, pos)[6] + 1
        pos = end
    return after, found, ""


def scan(data: bytes) -> int:
    """The offset after the last complete batch in ``data`` (``baseOffset + lastOffsetDelta +
    1``), or -1 when ``data`` holds no complete batch.

    Reads the headers only (no CRC, no decompression): it runs on the event loop for every
    fetch. Raises :class:`UnsupportedBatch` if a complete batch has magic 0/1 (or any but 2).
    A ``batchLength`` below 49 is corrupt: the walk stops there (:func:`decode` reports it).
    """
    return _headers(data)[0]


def batch_span(data: bytes, base: int) -> tuple[int, int, int] | None:
    """``(start, end, next_offset)`` of the complete batch whose base offset is ``base``, or None.

    For the intake giving up on a corrupt batch (not a per-record path: no native twin).
    ``next_offset`` is the base offset of the batch after it when one follows in ``data``, else
    ``base + lastOffsetDelta + 1``; the delta is under the CRC, so a negative one gives None.
    """
    _, batches, _ = _headers(data)
    for i, (start, end, first) in enumerate(batches):
        if first != base:
            continue
        if i + 1 < len(batches) and batches[i + 1][2] > base:
            return start, end, batches[i + 1][2]
        delta = _HEADER.unpack_from(data, start)[6]
        return (start, end, base + delta + 1) if delta >= 0 else None
    return None


class _Short(Exception):
    """A field runs past the end it must stay before."""


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A zigzag varint at ``pos`` (before ``end``): (value, next position)."""
    shift = 0
    acc = 0
    for _ in range(10):
        if pos >= end:
            raise _Short
        b = buf[pos]
        pos += 1
        acc |= (b & 0x7F) << shift
        if not b & 0x80:
            if acc >> 64:
                raise _Corrupt("varint over 64 bits")
            return (acc >> 1) ^ -(acc & 1), pos
        shift += 7
    raise _Corrupt("varint longer than 10 bytes")


def _record(buf: bytes, pos: int, stop: int, base: int) -> tuple[int, bytes | None, bytes | None]:
    """The record whose fields are ``buf[pos:stop]``: (offset, key, value)."""
    start = pos
    pos += 1  # attributes
    if pos > stop:
        raise _Short
    _, pos = _varint(buf, pos, stop)  # timestampDelta
    delta, pos = _varint(buf, pos, stop)
    offset = base + delta
    if not _INT64[0] <= offset <= _INT64[1]:
        raise _Corrupt("offset out of range")
    fields: list[bytes | None] = []
    for name in ("key", "value"):
        n, pos = _varint(buf, pos, stop)
        if n < -1:
            raise _Corrupt(f"{name} length {n}")
        if n > stop - pos:
            raise _Short
        fields.append(None if n == -1 else buf[pos : pos + n])
        pos += max(n, 0)
    headers, pos = _varint(buf, pos, stop)
    if headers < 0:
        raise _Corrupt(f"header count {headers}")
    for _ in range(headers):
        for name, least in (("key", 0), ("value", -1)):
            n, pos = _varint(buf, pos, stop)
            if n < least:
                raise _Corrupt(f"header {name} length {n}")
            if n > stop - pos:
                raise _Short
            pos += max(n, 0)
    if pos != stop:
        raise _Corrupt(f"length {stop - start} but its fields use {pos - start} bytes")
    return offset, fields[0], fields[1]


def _records(
    buf: bytes, pos: int, end: int, count: int, base: int
) -> list[tuple[int, bytes | None, bytes | None]]:
    """``count`` records from ``buf[pos:end]``: (offset, key, value) each."""
    out = []
    for i in range(count):
        try:
            length, pos = _varint(buf, pos, end)
            if length < 0 or length > end - pos:
                raise _Corrupt(f"length {length} runs past the batch")
        except _Short:
            raise _Corrupt(f"record {i} of {count} runs past the batch") from None
        except _Corrupt as exc:
            raise _Corrupt(f"record {i} of {count}: {exc.args[0]}") from None
        try:
            out.append(_record(buf, pos, pos + length, base))
        except _Short:
            raise _Corrupt(f"record {i} of {count}: fields run past its length {length}") from None
        except _Corrupt as exc:
            raise _Corrupt(f"record {i} of {count}: {exc.args[0]}") from None
        pos += length
    if pos != end:
        raise _Corrupt(f"{end - pos} bytes left after {max(count, 0)} records")
    return out


def _decompress(codec: int, payload: bytes) -> bytes:
    """The records of a compressed batch, by aiokafka's codec functions."""
    from aiokafka import codec as kc

    name = CODECS.get(codec)
    if name is None:
        raise _Corrupt(f"unknown compression codec {codec}")
    decoder: Callable[[bytes], bytes] = getattr(kc, f"{name}_decode")
    try:
        out = bytes(decoder(payload))
    except Exception:  # every codec failure is a corrupt batch
        raise _Corrupt(f"{name} decompression failed") from None
    if len(out) > MAX_DECOMPRESSED:
        raise _Corrupt(f"{name} output over {MAX_DECOMPRESSED} bytes")
    return out


def _crc32c(data: bytes) -> int:
    from aiokafka.record.util import calc_crc32c

    return calc_crc32c(data)


def _batch(
    data: bytes, start: int, end: int, check_crcs: bool
) -> list[tuple[int, bytes | None, bytes | None]] | None:
    """The records of the batch ``data[start:end]``; None for a control batch."""
    header = _HEADER.unpack_from(data, start)
    crc, attributes, count, base = header[4], header[5], header[12], header[0]
    if check_crcs:
        computed = _crc32c(data[start + ATTRIBUTES_AT : end])
        if computed != crc:
            raise _Corrupt(f"CRC mismatch: header {crc:#010x}, computed {computed:#010x}")
    if attributes & CONTROL:
        return None
    codec = attributes & 7
    pos = start + HEADER_SIZE
    if codec == 0:
        return _records(data, pos, end, count, base)
    buf = _decompress(codec, data[pos:end])
    return _records(buf, 0, len(buf), count, base)


def decode(
    data: bytes,
    fetch_offset: int,
    topic: str,
    partition: int,
    check_crcs: bool,
    chunk_type: type,
) -> tuple[list[KafkaDelivery], int, str]:
    """The deliveries of the complete batches in ``data``: ``(deliveries, corrupt_at,
    reason)``.

    ``corrupt_at`` is the base offset of the first corrupt batch (-1 when none) and ``reason``
    says what is wrong with it ("" when none); the records of the batches before it are
    returned. Every delivery shares one ``chunk_type(first_offset, last_offset + 1, count)``
    (not called when nothing is delivered). Raises :class:`UnsupportedBatch` on a legacy batch.
    """
    _, batches, stopped = _headers(data)
    records: list[tuple[int, bytes | None, bytes | None]] = []
    corrupt_at, reason = -1, ""
    expected = fetch_offset
    for start, end, base in batches:
        try:
            found = _batch(data, start, end, check_crcs)
        except _Corrupt as exc:
            corrupt_at, reason = base, str(exc.args[0])
            break
        for record in found or ():
            if record[0] >= expected:
                records.append(record)
                expected = record[0] + 1
        expected = max(expected, base + _HEADER.unpack_from(data, start)[6] + 1)
    else:
        if stopped:
            pos = batches[-1][1] if batches else 0
            corrupt_at, reason = _LENGTH.unpack_from(data, pos)[0], stopped
    if not records:
        return [], corrupt_at, reason
    chunk = chunk_type(records[0][0], records[-1][0] + 1, len(records))
    return (
        [
            KafkaDelivery(value, topic, partition, offset, key, chunk)
            for offset, key, value in records
        ],
        corrupt_at,
        reason,
    )
