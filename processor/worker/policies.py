"""The worker's policy set: files and directories plus the NATS KV bucket, compiled as one unit.

Order (decision 8) is file order, then document order; a policy applied through the KV bucket
(``activity policy apply``) replaces the file policy of the same name in place, and new names follow
in key order, so a reload never reorders. A set is swapped in only when every policy in it loads,
validates and compiles: an invalid update is rejected and the running set stays.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from processor.engine import Engine
from processor.errors import PolicyError, PolicyErrors
from processor.policy import Policy, check_policies, load_paths, parse_text
from processor.policy.loader import policy_files
from processor.translate import Translator

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Compiled:
    """A validated policy set and the translator built from it."""

    translator: Translator
    policies: tuple[Policy, ...]

    @property
    def names(self) -> list[str]:
        """Policy names in evaluation order."""
        return [p.name for p in self.policies]


def files_fingerprint(paths: Sequence[str | Path]) -> Fingerprint:
    """(path, mtime_ns, size) of every policy file under ``paths``: changes when any file does."""
    files, _errors = policy_files(paths)
    out = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


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


def compile_set(
    paths: Sequence[str | Path],
    kv_entries: Mapping[str, bytes],
    *,
    stages: Sequence[str] | None,
    max_record_bytes: int,
) -> Compiled:
    """Load, merge, validate and compile a policy set.

    Raises:
        PolicyErrors: any file or KV entry is invalid; nothing is half-applied.
    """
    loaded = load_paths(paths) if paths else None
    if loaded is not None:
        loaded.raise_for_errors()
    file_policies = loaded.policies if loaded is not None else []
    policies = merge(file_policies, load_kv_policies(kv_entries))
    checked = check_policies(policies)
    if checked.errors:
        raise PolicyErrors(checked.errors)
    names = [p.name for p in policies]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PolicyErrors([PolicyError(f"duplicate policy name {n!r}") for n in duplicates])
    engine = Engine(policies, stages=tuple(stages) if stages else None)
    return Compiled(Translator(engine, max_record_bytes), tuple(policies))
