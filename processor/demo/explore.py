"""What ``activity demo`` prints last: where its data went and the commands that explore it.

Without ``--data-dir`` or ``--keep`` the data lives in a temporary directory that is deleted on
exit, and the report says how to keep it. Otherwise the report names the directory and lists read
commands with the exact ``--clickhouse-url`` of the kept chDB store; each of them shows some of
the demo's story (``tests/integration/test_demo.py`` runs every one on a kept store). They run
once the demo has exited: chDB opens a store in one process at a time.
"""

from __future__ import annotations

import shlex
from pathlib import Path

#: The directory the report suggests for ``activity demo --data-dir``.
SUGGESTED_DIR = "./activity-demo"


def chdb_url(data_dir: Path) -> str:
    """The ``--clickhouse-url`` of the demo's chDB store in ``data_dir`` (an absolute path)."""
    return f"chdb://{(data_dir / 'chdb').resolve()}"


def explore_commands(data_dir: Path) -> list[str]:
    """Read commands to try on the demo's data in ``data_dir``, as shell command lines.

    Audit and event queries look back 24 hours by default; ``--start now-7d`` keeps the commands
    working on a store kept for a few days.
    """
    url = "--clickhouse-url " + shlex.quote(chdb_url(data_dir))
    return [
        f"activity query {url} --filter \"spec.resource.name == 'ams-fra-1'\"",
        f"activity history circuits ams-fra-1 --diff {url}",
        f"activity audit query {url} --actor bob --start now-7d",
        f"activity events query {url} --field-selector type=Warning --start now-7d",
        f"activity facets spec.actor.name spec.resource.kind {url}",
        f"activity preview -f {shlex.quote(str(_deployments_policy()))} --auto-fetch "
        f"--time-range 7d {url}",
    ]


def _deployments_policy() -> Path:
    """The bundled Deployment policy (``preview --auto-fetch`` runs it on the demo's records)."""
    from processor.policy.bundled import bundled_policy_dir

    return bundled_policy_dir() / "kubernetes" / "apps-deployments.yaml"


def data_report(data_dir: Path, kept: bool, transport: str = "nats") -> str:
    """The demo's last lines: where the data went and, if it was kept, what to try next.

    Args:
        data_dir: the demo's data directory (``nats/`` and ``chdb/`` inside).
        kept: whether the directory stays after the demo exits (``--data-dir`` or ``--keep``).
        transport: ``nats``, or ``kafka`` (tansu keeps its topics in memory: only chDB stays).
    """
    kafka = transport == "kafka"
    if not kept:
        where = "chDB" if kafka else "NATS and chDB"
        text = (
            f"\nThe data ({where} in {data_dir}) is deleted on exit. To keep it and explore "
            f"it, run:\n  activity demo --data-dir {SUGGESTED_DIR}"
        )
        if kafka:
            return text + " --transport kafka"
        return text + (
            "\n(or add --keep to also leave NATS, the worker and the ingest running until Ctrl-C)"
        )
    stores = "" if kafka else "nats/: the JetStream store, "
    lines = [
        f"\nThe data is kept in {data_dir.resolve()} ({stores}chdb/: the tables). Explore it:",
        *(f"  {command}" for command in explore_commands(data_dir)),
        "More in docs/query.md. Another demo run with this directory adds its story to the data.",
    ]
    return "\n".join(lines)
