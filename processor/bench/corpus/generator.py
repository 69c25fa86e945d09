"""The seeded corpus generator and :func:`generate`."""

from __future__ import annotations

from collections.abc import Iterator

from processor.bench.corpus.audit import AuditGen
from processor.bench.corpus.events import EventGen
from processor.bench.corpus.vocab import MIXES, Json


class Generator(AuditGen, EventGen):
    """Audit events and Kubernetes Events from one ``random.Random(seed)``."""


def generate(
    count: int, seed: int = 1, event_ratio: float | None = None, mix: str = "standard"
) -> Iterator[Json]:
    """Yield ``count`` corpus records: audit events and about ``event_ratio`` Kubernetes Events.

    Args:
        count: the number of records.
        seed: the seed; the same seed yields identical records in every process.
        event_ratio: the share of Kubernetes Events (0 to 1); ``None`` takes the mix's own.
        mix: a name of :data:`~processor.bench.corpus.vocab.MIXES` (``standard`` or
            ``production``).

    Yields:
        Fresh JSON-ready dicts (no two records share sub-objects; callers may mutate them).
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {', '.join(MIXES)}, not {mix!r}")
    shape = MIXES[mix]
    ratio = shape.event_ratio if event_ratio is None else event_ratio
    if not 0.0 <= ratio <= 1.0:
        raise ValueError("event_ratio must be between 0 and 1")
    gen = Generator(seed, shape)
    for _ in range(count):
        yield gen.event() if gen.rng.random() < ratio else gen.audit()
