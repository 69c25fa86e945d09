"""The hook in aiokafka's fetcher (processor/kafka/fetch.py): a record-set consumer gets one
FetchedSet per fetched partition; legacy batches, read-committed consumers and every other
consumer get aiokafka's own records. (The whole path on a real broker:
tests/integration/test_kafka_record_sets.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from processor.kafka import fetch
from processor.kafka.fetch import RECORD_SETS, FetchedSet

pytest.importorskip("aiokafka")


@pytest.fixture(scope="module", autouse=True)
def hook() -> None:
    assert fetch.install()
    from aiokafka.consumer import fetcher

    assert fetcher.MemoryRecords is fetch._Fetched
    assert fetcher.PartitionRecords is fetch._partition_records


def v2_set(batches: list[tuple[int, list[bytes]]]) -> bytes:
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    out = b""
    for base, values in batches:
        builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
        for i, value in enumerate(values):
            builder.append(i, timestamp=None, key=b"k", value=value, headers=[])
        data = bytearray(builder.build())
        data[0:8] = base.to_bytes(8, "big")  # the batch's base offset
        out += bytes(data)
    return out


def legacy_set(values: list[bytes]) -> bytes:
    from aiokafka.record.legacy_records import LegacyRecordBatchBuilder

    builder = LegacyRecordBatchBuilder(1, 0, 1 << 20)
    for i, value in enumerate(values):
        builder.append(i, timestamp=None, key=None, value=value)
    return bytes(builder.build())


def tp() -> Any:
    from aiokafka.structs import TopicPartition

    return TopicPartition("t", 3)


def records(data: bytes, deserializer: Any, fetch_offset: int = 0, isolation: int = 0) -> Any:
    fetched = fetch._Fetched(data)
    assert fetched.has_next() and fetched.size_in_bytes() == len(data)
    return fetch._partition_records(
        tp(), fetched, [], fetch_offset, None, deserializer, True, isolation
    )


def test_a_record_set_consumer_gets_one_set_and_its_next_offset() -> None:
    data = v2_set([(10, [b"a", b"b", b"c"]), (13, [b"d", b"e"])])
    truncated = data + data[:20]  # a batch cut by the fetch size: not part of the set
    part = records(truncated, RECORD_SETS, fetch_offset=11)
    assert part.next_fetch_offset == 11
    got = list(part)
    assert got == [FetchedSet("t", 3, truncated, 11, 15, True)]
    assert part.next_fetch_offset == 15


def test_a_set_without_a_complete_batch_past_the_position_keeps_the_position() -> None:
    data = v2_set([(10, [b"a"])])
    part = records(data, RECORD_SETS, fetch_offset=11)
    assert [s.next_offset for s in part] == [11] and part.next_fetch_offset == 11


def test_legacy_batches_come_as_aiokafka_records_with_the_values_as_fetched() -> None:
    part = records(legacy_set([b"x", b"y"]), RECORD_SETS)
    got = list(part)
    assert [(r.offset, r.value) for r in got] == [(0, b"x"), (1, b"y")]


@pytest.mark.parametrize("deserializer", [None, bytes.upper])
def test_other_consumers_get_aiokafka_records(deserializer: Any) -> None:
    got = list(records(v2_set([(0, [b"a", b"b"])]), deserializer))
    expect = [b"a", b"b"] if deserializer is None else [b"A", b"B"]
    assert [r.value for r in got] == expect


def test_a_read_committed_record_set_consumer_gets_aiokafka_records() -> None:
    got = list(records(v2_set([(0, [b"a"])]), RECORD_SETS, isolation=fetch.READ_COMMITTED))
    assert [(r.offset, r.value) for r in got] == [(0, b"a")]


def test_batch_span_names_the_bytes_and_the_offset_after_a_batch() -> None:
    from processor.kafka.batches import batch_span

    first = v2_set([(10, [b"a", b"b", b"c"])])
    data = first + v2_set([(20, [b"d"])])  # a gap: the next batch's base offset is what follows
    assert batch_span(data, 10) == (0, len(first), 20)
    assert batch_span(data, 20) == (len(first), len(data), 21)  # the last: base + delta + 1
    assert batch_span(data, 11) is None and batch_span(data[:-1], 20) is None
