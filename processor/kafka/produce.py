"""Publishing input records to Kafka as every producer must: keyed and explicitly partitioned.

One home for the tests, the benchmarks, the demo and the load run (:func:`route`): a record goes
to the partition the workers' partition function names, keyed by that function's input.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from processor.kafka.route import route
from processor.kafka.settings import COMPRESSIONS, DEFAULT_COMPRESSION

__all__ = ["new_producer", "send_records"]


def new_producer(
    bootstrap: str | list[str], compression: str = DEFAULT_COMPRESSION, **options: Any
) -> Any:
    """An ``AIOKafkaProducer`` as the project uses it: not idempotent (tansu refuses
    InitProducerId), ``acks=all``, its batches compressed with ``compression`` (one of
    :data:`~processor.kafka.settings.COMPRESSIONS`); ``options`` override (start it yourself).

    Raises:
        ValueError: an unknown ``compression``.
    """
    from aiokafka import AIOKafkaProducer

    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}: {compression!r}")
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "enable_idempotence": False,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "compression_type": None if compression == "none" else compression,
    }
    config.update(options)
    return AIOKafkaProducer(**config)


async def send_records(
    producer: Any,
    topic: str,
    source: str,
    partitions: int,
    records: Iterable[Any],
) -> int:
    """Send ``records`` (JSON values, or ``bytes`` sent as they are and keyed by their parse) to
    ``topic`` routed as ``source`` (``audit``/``event``) records; returns once all are stored.

    A ``bytes`` record that is not JSON goes where the empty key does (a poison record).
    """
    futures = []
    for record in records:
        if isinstance(record, bytes):
            payload = record
            try:
                value = orjson.loads(record)
            except orjson.JSONDecodeError:
                value = None
        else:
            payload, value = orjson.dumps(record), record
        key, partition = route(value, source, partitions)
        futures.append(await producer.send(topic, payload, key=key, partition=partition))
    for future in futures:
        await future
    return len(futures)
