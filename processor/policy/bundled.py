"""The ActivityPolicies bundled with the project (``policies/`` at the repository root).

``policies/kubernetes/`` covers the core Kubernetes kinds operators meet every day and their common
Events; ``policies/inventory/`` has one policy per inventory kind (``inventory.miloapis.com``).
The directory is found next to the ``processor`` package, which is where it is in a checkout and
in an editable install.
"""

from __future__ import annotations

from pathlib import Path

from processor.errors import ProcessorError
from processor.policy.loader import policy_files

_ROOT = Path(__file__).resolve().parents[2]


def bundled_policy_dir() -> Path:
    """The directory of the bundled policies.

    Returns:
        ``<repository>/policies``.

    Raises:
        ProcessorError: the directory is not there (an install without the repository).
    """
    path = _ROOT / "policies"
    if not path.is_dir():
        raise ProcessorError(
            f"bundled policies not found at {path}: install the project from its repository "
            "(pip install -e .) or pass the policy directory explicitly"
        )
    return path


def bundled_policy_paths() -> list[Path]:
    """Every bundled policy file, in the order the loader reads a directory (sorted paths).

    Returns:
        The ``*.yaml`` files under :func:`bundled_policy_dir`, recursively, sorted.
    """
    files, _missing = policy_files([bundled_policy_dir()])
    return files
