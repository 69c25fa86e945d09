"""Fetched record sets handed over whole: the Kafka worker's fetch path without a Python object
per record (docs/kafka.md#decoding-off-the-event-loop).

aiokafka turns every fetched record into a ``ConsumerRecord`` on the event loop's thread and
decompresses with a codec that holds the GIL; measured, that was most of what the Kafka worker
spent beyond translating (docs/benchmarks.md#kafka-e2e). A consumer created with
``value_deserializer=`` :data:`RECORD_SETS` keeps aiokafka's fetching (requests, positions,
assignments, errors) but its ``getmany`` returns, per partition, one :class:`FetchedSet`: the
bytes of the fetch response's record set. The worker decodes it in a thread
(:func:`decoder`: ``processor._native.kafkabatch`` when built, the twin
:mod:`processor.kafka.batches` otherwise): CRC, decompression and record parsing without the GIL,
straight into the pipeline's deliveries, while the event loop translates the previous set.

The hook replaces two names aiokafka's fetcher module looks up when a fetch response arrives
(``MemoryRecords`` and ``PartitionRecords``) with wrappers that do exactly what aiokafka does for
every other consumer. :func:`install` checks that the names are there; if a future aiokafka
moves them, the hook stays off and the worker reads records the classic way (logged).

The position moves past the set when ``getmany`` returns it (as for records), to the end of its
last complete batch (:func:`~processor.kafka.batches.scan`, headers only). A set holding a legacy
(magic 0/1) batch is handed over as aiokafka's records instead.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["RECORD_SETS", "FetchedSet", "decoder", "install"]


class _RecordSets:
    """The ``value_deserializer`` marking a consumer whose fetches are handed over whole (never
    called: aiokafka's records of legacy batches are made without it)."""

    def __call__(self, value: bytes | None) -> bytes | None:
        return value

    def __repr__(self) -> str:
        return "RECORD_SETS"


RECORD_SETS = _RecordSets()


@dataclass(slots=True)
class FetchedSet:
    """One partition's fetched record set: ``data`` from ``fetch_offset`` (records before it in
    the first batch are skipped when decoded) to ``next_offset`` (after its last complete batch)."""

    topic: str
    partition: int
    data: bytes
    fetch_offset: int
    next_offset: int
    check_crcs: bool


class _Fetched:
    """What aiokafka's ``MemoryRecords`` is to the fetcher, keeping the bytes for
    :class:`_SetRecords`."""

    __slots__ = ("data", "records")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.records = _MEMORY_RECORDS(data)

    def has_next(self) -> bool:
        return bool(self.records.has_next())

    def size_in_bytes(self) -> int:
        return len(self.data)


class _SetRecords:
    """aiokafka's ``PartitionRecords`` for a :data:`RECORD_SETS` consumer: yields one
    :class:`FetchedSet` and moves ``next_fetch_offset`` past it."""

    def __init__(self, tp: Any, fetched: _Fetched, fetch_offset: int, check_crcs: bool) -> None:
        self.next_fetch_offset = fetch_offset
        self._set: FetchedSet | None = None
        # a set with no complete batch past the position (a corrupt header) is handed over with
        # the position kept: decoding reports the corruption instead of a silent re-fetch loop
        end = max(_scan(fetched.data), fetch_offset)
        self._set = FetchedSet(tp.topic, tp.partition, fetched.data, fetch_offset, end, check_crcs)

    def __iter__(self) -> _SetRecords:
        return self

    def __next__(self) -> FetchedSet:
        fetched, self._set = self._set, None
        if fetched is None:
            raise StopIteration
        self.next_fetch_offset = fetched.next_offset
        return fetched


#: aiokafka's isolation level reading only committed transactions: its records are filtered by
#: the fetch's aborted transactions, which record sets do not do.
READ_COMMITTED = 1

_MEMORY_RECORDS: Any = None
_PARTITION_RECORDS: Any = None
_installed: bool | None = None


def _scan(data: bytes) -> int:
    return int(decoder().scan(data))


def _partition_records(
    tp: Any,
    records: Any,
    aborted_transactions: Any,
    fetch_offset: int,
    key_deserializer: Any,
    value_deserializer: Any,
    check_crcs: bool,
    isolation_level: Any,
) -> Any:
    if isinstance(records, _Fetched):
        if value_deserializer is RECORD_SETS:
            if isolation_level != READ_COMMITTED:
                with contextlib.suppress(decoder().UnsupportedBatch):  # legacy: aiokafka's records
                    return _SetRecords(tp, records, fetch_offset, check_crcs)
            value_deserializer = None  # the values as fetched
        records = records.records
    return _PARTITION_RECORDS(
        tp,
        records,
        aborted_transactions,
        fetch_offset,
        key_deserializer,
        value_deserializer,
        check_crcs,
        isolation_level,
    )


def install() -> bool:
    """Put the hook into aiokafka's fetcher (once per process); False when this aiokafka does
    not have the names it replaces (then :data:`RECORD_SETS` consumers must not be used)."""
    global _MEMORY_RECORDS, _PARTITION_RECORDS, _installed
    if _installed is not None:
        return _installed
    from aiokafka.consumer import fetcher

    memory = getattr(fetcher, "MemoryRecords", None)
    partition = getattr(fetcher, "PartitionRecords", None)
    if memory is None or partition is None:
        log.warning(
            "aiokafka %s has no fetcher.MemoryRecords/PartitionRecords: records are decoded "
            "by aiokafka on the event loop",
            _aiokafka_version(),
        )
        _installed = False
        return False
    _MEMORY_RECORDS, _PARTITION_RECORDS = memory, partition
    fetcher.MemoryRecords = _Fetched
    fetcher.PartitionRecords = _partition_records
    _installed = True
    return True


def _aiokafka_version() -> str:
    import aiokafka

    return str(getattr(aiokafka, "__version__", "?"))


_decoder: ModuleType | None = None


def decoder() -> ModuleType:
    """The record-set decoder: ``processor._native.kafkabatch``, or its twin
    :mod:`processor.kafka.batches` on the Python path."""
    global _decoder
    if _decoder is None:
        from processor.native import extension

        module = extension("kafkabatch")
        if module is None:
            from processor.kafka import batches

            module = batches
        _decoder = module
        return module
    return _decoder
