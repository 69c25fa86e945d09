"""Streaming the corpus as JSON lines, optionally batching audit events into ``EventList`` lines."""

from __future__ import annotations

import os
from typing import IO, NamedTuple

import orjson

from processor.bench.corpus.generator import generate


class CorpusStats(NamedTuple):
    """What :func:`write_jsonl` wrote."""

    records: int
    audit: int
    events: int
    lines: int
    bytes: int


_FLUSH_BYTES = 1 << 20


def write_jsonl(
    path_or_file: str | os.PathLike[str] | IO[bytes],
    count: int,
    seed: int = 1,
    batch: int = 0,
    event_ratio: float | None = None,
    mix: str = "standard",
) -> CorpusStats:
    """Write the corpus as JSON lines, streaming (memory bounded by one batch).

    Args:
        path_or_file: a path (created or truncated) or a binary file object.
        count: the number of records (audit events plus Kubernetes Events).
        seed: the corpus seed.
        batch: 0 writes one record per line; N > 0 groups audit events into
            ``audit.k8s.io/v1`` ``EventList`` lines of up to N items (Events stay one per line).
        event_ratio: the share of Kubernetes Events (``None``: the mix's own).
        mix: the corpus mix (:data:`processor.bench.corpus.vocab.MIXES`).

    Returns:
        Counts of what was written.
    """
    if batch < 0:
        raise ValueError("batch must be >= 0")
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "wb") as fh:
            return _write(fh, count, seed, batch, event_ratio, mix)
    return _write(path_or_file, count, seed, batch, event_ratio, mix)


def _write(
    dst: IO[bytes], count: int, seed: int, batch: int, event_ratio: float | None, mix: str
) -> CorpusStats:
    dumps = orjson.dumps
    chunk: list[bytes] = []
    chunk_bytes = 0
    items: list[bytes] = []
    audit = events = lines = total = 0

    def emit(line: bytes) -> None:
        nonlocal chunk_bytes, lines, total
        chunk.append(line)
        chunk_bytes += len(line)
        lines += 1
        total += len(line)
        if chunk_bytes >= _FLUSH_BYTES:
            flush()

    def flush() -> None:
        nonlocal chunk_bytes
        if chunk:
            dst.write(b"".join(chunk))
            chunk.clear()
            chunk_bytes = 0

    def emit_list() -> None:
        emit(
            b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":['
            + b",".join(items)
            + b"]}\n"
        )
        items.clear()

    for rec in generate(count, seed, event_ratio, mix):
        if rec["apiVersion"] == "audit.k8s.io/v1":
            audit += 1
            if batch:
                items.append(dumps(rec))
                if len(items) >= batch:
                    emit_list()
                continue
        else:
            events += 1
        emit(dumps(rec) + b"\n")
    if items:
        emit_list()
    flush()
    dst.flush()
    return CorpusStats(audit + events, audit, events, lines, total)
