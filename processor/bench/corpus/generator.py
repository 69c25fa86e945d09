"""The seeded corpus generator and :func:`generate`."""

from __future__ import annotations

from collections.abc import Iterator

from processor.bench.corpus.audit import AuditGen
from processor.bench.corpus.events import EventGen
from processor.bench.corpus.vocab import Json


class Generator(AuditGen, EventGen):
    """Audit events and Kubernetes Events from one ``random.Random(seed)``."""


def generate(count: int, seed: int = 1, event_ratio: float = 0.1) -> Iterator[Json]:
    """Yield ``count`` corpus records: audit events and about ``event_ratio`` Kubernetes Events.

    Args:
        count: the number of records.
        seed: the seed; the same seed yields identical records in every process.
        event_ratio: the share of Kubernetes Events (0 to 1).

    Yields:
        Fresh JSON-ready dicts (no two records share sub-objects; callers may mutate them).
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if not 0.0 <= event_ratio <= 1.0:
        raise ValueError("event_ratio must be between 0 and 1")
    gen = Generator(seed)
    for _ in range(count):
        yield gen.event() if gen.rng.random() < event_ratio else gen.audit()
