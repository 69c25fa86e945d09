"""The ActivityPolicies bundled with the project (``policies/`` at the repository root).

``policies/kubernetes/`` covers the core Kubernetes kinds operators meet every day and their common
Events; ``policies/inventory/`` has one policy per inventory kind (``inventory.miloapis.com``).
The directory is found next to the ``processor`` package, which is where it is in a checkout and
in an editable install; a wheel carries a copy inside the package (``processor/_bundled``, made
by ``setup.py``), used when there is no checkout around it.
"""

from __future__ import annotations

from pathlib import Path

from processor.errors import ProcessorError
from processor.policy.loader import policy_files

_ROOT = Path(__file__).resolve().parents[2]
_COPY = Path(__file__).resolve().parents[1] / "_bundled"


def bundled_policy_dir() -> Path:
    """The directory of the bundled policies.

    Returns:
        ``<repository>/policies`` in a checkout, else the copy an installed wheel carries.

    Raises:
        ProcessorError: neither is there (a broken install).
    """
    for path in (_ROOT / "policies", _COPY / "policies"):
        if path.is_dir():
            return path
    raise ProcessorError(
        f"bundled policies not found at {_ROOT / 'policies'} nor {_COPY / 'policies'}: "
        "reinstall the project or pass the policy directory explicitly"
    )


def bundled_policy_paths() -> list[Path]:
    """Every bundled policy file, in the order the loader reads a directory (sorted paths).

    Returns:
        The ``*.yaml`` files under :func:`bundled_policy_dir`, recursively, sorted.
    """
    files, _missing = policy_files([bundled_policy_dir()])
    return files
