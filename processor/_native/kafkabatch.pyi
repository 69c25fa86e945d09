"""Type stub of the native Kafka record-set decoder; the twin is ``processor/kafka/batches.py``."""

from typing import Any

from processor.kafka.batches import UnsupportedBatch as UnsupportedBatch

class KafkaDelivery:
    data: bytes | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    chunk: Any
    def __init__(
        self,
        data: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        chunk: Any,
    ) -> None: ...

def codecs() -> dict[str, str]: ...
def scan(data: bytes) -> int: ...
def decode(
    data: bytes,
    fetch_offset: int,
    topic: str,
    partition: int,
    check_crcs: bool,
    chunk_type: type,
) -> tuple[list[KafkaDelivery], int, str]: ...
def _force_python_codecs(flag: bool) -> None: ...
def _crc32c(data: bytes, hw: bool) -> int: ...
