"""When the worker's policy files changed: a fingerprint of every file under the policy paths.

The set itself is loaded, merged with the KV bucket and compiled by
:func:`processor.policy.compile.compile_set`; a set is swapped in only when every policy in it
loads, validates and compiles, so an invalid update is rejected and the running set stays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from processor.policy.loader import policy_files

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


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
