"""The Kafka worker's offset bookkeeping: commit only the end of the fully settled prefix."""

from __future__ import annotations

from dataclasses import dataclass

from processor.kafka.transport import OffsetBook


@dataclass
class Record:
    offset: int
    value: bytes = b"{}"
    key: bytes | None = None


def records(first: int, count: int) -> list[Record]:
    return [Record(first + i) for i in range(count)]


def test_a_partition_commits_only_past_records_all_settled() -> None:
    book = OffsetBook()
    a = book.hand_over("t", 0, records(10, 3))  # offsets 10-12
    b = book.hand_over("t", 0, records(13, 2))  # offsets 13-14
    assert book.settle(b) == set()  # the later chunk first: nothing may be committed
    assert book.to_commit() == {}
    assert book.settle(a[:2]) == set()
    assert book.unsettled(("t", 0)) == 1
    assert book.settle(a[2:]) == {("t", 0)}
    assert book.to_commit() == {("t", 0): 15}  # both chunks: the next offset to read
    book.committed({("t", 0): 15})
    assert book.to_commit() == {}


def test_partitions_are_independent_and_a_dropped_one_commits_nothing() -> None:
    book = OffsetBook()
    p0 = book.hand_over("t", 0, records(0, 2))
    p1 = book.hand_over("t", 1, records(5, 1))
    assert book.settle(p1) == {("t", 1)}
    assert book.to_commit() == {("t", 1): 6}
    book.drop(("t", 0))  # revoked before its records were settled
    assert book.settle(p0) == set()
    assert book.to_commit() == {("t", 1): 6}
    assert book.partitions() == [("t", 1)]


def test_a_partition_handed_over_again_after_a_drop_starts_afresh() -> None:
    book = OffsetBook()
    old = book.hand_over("t", 0, records(0, 2))
    book.drop(("t", 0))
    new = book.hand_over("t", 0, records(0, 2))  # re-read from the last commit
    assert book.settle(old) == set()  # the old deliveries settle nothing of the new owner's
    assert book.to_commit() == {}
    assert book.settle(new) == {("t", 0)}
    assert book.to_commit() == {("t", 0): 2}
