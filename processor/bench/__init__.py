"""Benchmark support: the standard, seeded input corpus (``activity bench --generate``)."""

from processor.bench.corpus import CorpusStats, generate, write_jsonl

__all__ = ["CorpusStats", "generate", "write_jsonl"]
