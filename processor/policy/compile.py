"""One path from policy files (and the worker's KV bucket) to a compiled engine.

Load, merge, validate, compile: ``activity translate``, ``activity policy apply``, the benchmarks
and the worker's reloads all go through :func:`policy_set`, so a set one of them accepts is a set
every other accepts. Order (``docs/design.md#d8``) is file order, then document order; a
policy applied through the KV bucket (``activity policy apply``) replaces the file policy of the
same name in place, and new names follow in key order, so a reload never reorders. Nothing is
half-applied: any invalid file, entry or duplicate name raises :class:`PolicyErrors`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from processor.engine import Engine
from processor.errors import PolicyError, PolicyErrors
from processor.native import Implementation
from processor.policy import Policy, check_policies, load_paths, parse_text
from processor.stages import DEFAULT_STAGES
from processor.translate import DEFAULT_MAX_RECORD_BYTES, Translator

__all__ = ["Compiled", "compile_set", "load_engine", "load_kv_policies", "merge", "policy_set"]


@dataclass(frozen=True)
class Compiled:
    """A validated policy set and the translator built from it."""

    translator: Translator
    policies: tuple[Policy, ...]

    @property
    def names(self) -> list[str]:
        """Policy names in evaluation order."""
        return [p.name for p in self.policies]


def merge(file_policies: Sequence[Policy], kv_policies: Sequence[Policy]) -> list[Policy]:
    """File policies with same-named KV policies replaced in place, other KV policies appended."""
    by_name = {p.name: p for p in kv_policies}
    merged = [by_name.pop(p.name, p) for p in file_policies]
    merged.extend(p for p in kv_policies if p.name in by_name)
    return merged


def load_kv_policies(entries: Mapping[str, bytes]) -> list[Policy]:
    """Parse the KV bucket's values (key order); raise :class:`PolicyErrors` on any problem."""
    policies: list[Policy] = []
    errors: list[PolicyError] = []
    for key in sorted(entries):
        result = parse_text(entries[key].decode("utf-8", "replace"), f"kv:{key}")
        policies.extend(result.policies)
        errors.extend(result.errors)
    if errors:
        raise PolicyErrors(errors)
    return policies


def policy_set(
    paths: Sequence[str | Path], kv_entries: Mapping[str, bytes] | None = None
) -> list[Policy]:
    """Load, merge and validate the policies of ``paths`` and ``kv_entries``.

    Raises:
        PolicyErrors: any file or KV entry is invalid, or two policies share a name.
    """
    loaded = load_paths(paths) if paths else None
    if loaded is not None:
        loaded.raise_for_errors()
    file_policies = loaded.policies if loaded is not None else []
    policies = merge(file_policies, load_kv_policies(kv_entries or {}))
    checked = check_policies(policies)
    if checked.errors:
        raise PolicyErrors(checked.errors)
    names = [p.name for p in policies]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PolicyErrors([PolicyError(f"duplicate policy name {n!r}") for n in duplicates])
    return policies


def compile_set(
    paths: Sequence[str | Path],
    kv_entries: Mapping[str, bytes] | None = None,
    *,
    stages: Sequence[str] | None = DEFAULT_STAGES,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    impl: Implementation | None = None,
) -> Compiled:
    """:func:`policy_set`, compiled into a translator.

    Args:
        paths: policy files and directories.
        kv_entries: the KV bucket's entries (key -> YAML).
        stages: the audit stages translated (None: every stage).
        max_record_bytes: larger records are dead-lettered unread.
        impl: see :class:`~processor.engine.Engine` (None: the active implementation).
    """
    policies = policy_set(paths, kv_entries)
    engine = Engine(policies, stages=tuple(stages) if stages else None, impl=impl)
    return Compiled(Translator(engine, max_record_bytes), tuple(policies))


def load_engine(
    paths: Sequence[str | Path], all_stages: bool = False, impl: Implementation | None = None
) -> Engine:
    """The engine of :func:`policy_set` (``paths`` only): the default stages, or every one."""
    stages = None if all_stages else DEFAULT_STAGES
    return Engine(policy_set(paths), stages=stages, impl=impl)
