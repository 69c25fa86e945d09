"""``activity history RESOURCE NAME``: every change to one object, oldest first (``--diff``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.commands.flags import add_output
from processor.commands.query import add_connection, open_backend, parse_duration
from processor.query.errors import QueryError

#: :data:`processor.query.history.MAX_CHANGES` (not imported: the parser is built without the
#: query modules; a test keeps the two equal)
MAX_CHANGES = 1000


def register(subparsers: Any) -> None:
    """``activity history``: changes of one object from the stored audit logs."""
    parser = subparsers.add_parser(
        "history",
        help="every change to one object from stored audit logs (--diff: what changed)",
        description="List the create/update/patch/delete audit events of one object, oldest "
        "first, with who and when; --diff prints a unified diff between successive versions.",
    )
    parser.add_argument("resource", metavar="RESOURCE", help="plural resource, e.g. deployments")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("-n", "--namespace", default="", help="namespace of the object")
    parser.add_argument("--diff", action="store_true", help="show what changed in each version")
    parser.add_argument("--start", default="now-30d", help="RFC3339 or now-<N><unit> (now-30d)")
    parser.add_argument("--end", default="now")
    parser.add_argument("--max-window", default="90d", help="longest allowed window (90d)")
    parser.add_argument("--limit", type=int, default=MAX_CHANGES, help="at most this many changes")
    add_output(
        parser,
        detail="table and wide (the same columns) for people; json or yaml, a list of changes "
        "with the object after each, for programs",
    )
    add_connection(parser)
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from processor.output import dump
    from processor.query.history import fetch_changes, render
    from processor.query.output import format_rows, is_terminal, use_color
    from processor.sink import SinkError

    try:
        if not 1 <= args.limit <= 10 * MAX_CHANGES:
            raise QueryError(f"--limit must be between 1 and {10 * MAX_CHANGES}")
        backend = open_backend(args)
        try:
            changes = fetch_changes(
                backend,
                args.resource,
                args.name,
                args.namespace,
                args.start,
                args.end,
                args.limit,
                parse_duration(args.max_window),
            )
        finally:
            backend.close()
    except (QueryError, SinkError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output in ("json", "yaml"):  # an empty list too: a script reads no changes
        doc = [
            {"timestamp": c.timestamp, "verb": c.verb, "user": c.user, "status": c.status}
            | ({"object": c.object} if c.object is not None else {})
            for c in changes
        ]
        sys.stdout.write(dump(doc, args.output))
    if not changes:
        print("No changes found for this resource.", file=sys.stderr)
        return 0
    if args.output in ("json", "yaml"):
        return 0
    if args.diff:
        for line in render(changes, use_color(sys.stdout)):
            print(line)
    else:
        rows = [["TIME", "VERB", "USER", "STATUS"]]
        rows += [[c.timestamp, c.verb, c.user, str(c.status or "")] for c in changes]
        print("\n".join(format_rows(rows)))
    rule = "─" * 60 if is_terminal(sys.stderr) else "-" * 60
    print(f"{rule}\nTotal: {len(changes)} changes", file=sys.stderr)
    return 0
