"""``activity migrate``: create or update the ClickHouse schema (database, tables, bookkeeping).

Prints one line per applied migration and a summary; ``--dry-run`` prints the rendered SQL of
every migration file without connecting. Exit status 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from processor.errors import ProcessorError


def register(subparsers: Any) -> None:
    """Add the ``migrate`` sub-parser."""
    parser = subparsers.add_parser(
        "migrate",
        help="create or update the ClickHouse schema",
        description="Apply the pending schema migrations (versioned, checksummed, idempotent) "
        "to chDB or a ClickHouse server.",
    )
    parser.add_argument(
        "--clickhouse-url",
        default=os.environ.get("ACTIVITY_CLICKHOUSE_URL", ""),
        metavar="URL",
        help="chdb:///DIR, clickhouse://user:pw@host:9000/audit "
        "(env ACTIVITY_CLICKHOUSE_URL; default chdb://<data dir>/chdb)",
    )
    parser.add_argument(
        "--replicated",
        action="store_true",
        default=_env_flag("ACTIVITY_REPLICATED"),
        help="Replicated database, ReplicatedReplacingMergeTree tables (env ACTIVITY_REPLICATED)",
    )
    parser.add_argument(
        "--storage-policy",
        default=os.environ.get("ACTIVITY_STORAGE_POLICY") or None,
        metavar="NAME",
        help="tiered storage policy for audit_logs, with a volume named 'cold' "
        "(env ACTIVITY_STORAGE_POLICY)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the SQL instead of running it"
    )
    parser.set_defaults(handler=_handle)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _dry_run(args: argparse.Namespace, database: str) -> int:
    from processor.sink.migrate import RenderOptions, load_migrations

    options = RenderOptions(
        database=database, replicated=args.replicated, storage_policy=args.storage_policy
    )
    for migration in load_migrations():
        print(f"-- {migration.name} (sha256 {migration.checksum})")
        if migration.requires:
            print(f"-- needs ClickHouse >= {'.'.join(map(str, migration.requires))}")
        for statement in migration.render(options):
            print(statement + ";\n")
    return 0


def _handle(args: argparse.Namespace) -> int:
    from processor.sink.factory import default_clickhouse_url, open_sink
    from processor.sink.migrate import migrate

    url = args.clickhouse_url or default_clickhouse_url()
    try:
        sink = open_sink(url)
        if args.dry_run:
            return _dry_run(args, sink.database)
        try:
            result = migrate(
                sink,
                replicated=args.replicated,
                storage_policy=args.storage_policy,
                on_applied=lambda m: print(f"applied {m.name}"),
            )
        finally:
            sink.close()
    except (ProcessorError, ValueError) as exc:
        print(f"activity migrate: {exc}", file=sys.stderr)
        return 1
    for name in result.unsupported:
        print(f"skipped {name} (needs a newer ClickHouse)")
    print(f"{redact(url)}: {result.summary()}")
    return 0


def redact(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"^(\w+://[^:/@]*):[^@/]*@", r"\1:***@", url)
