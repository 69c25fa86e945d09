"""``activity watch``: live activities from the ACTIVITIES stream, resumable from a sequence."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from processor.commands.argtypes import non_negative_int
from processor.commands.flags import add_output

if TYPE_CHECKING:
    from processor.query.output import StreamTable
    from processor.query.watch import Watched, WatchSpec

#: Minimum widths of the table's columns, so that the first rows set sensible ones.
_MIN_WIDTHS = {"SEQ": 6, "TIME": 20, "ACTOR": 24, "SOURCE": 6}


def register(subparsers: Any) -> None:
    """``activity watch``: stream activities as they are produced."""
    parser = subparsers.add_parser(
        "watch",
        help="live activities from the ACTIVITIES stream (CEL filter, resumable)",
        description="Print activities as they are published. --since SEQ resumes at stream "
        "sequence SEQ (inclusive); each activity's metadata.resourceVersion is its sequence.",
    )
    parser.add_argument("--filter", default="", help="CEL filter, evaluated client-side")
    parser.add_argument(
        "--since", type=non_negative_int, default=0, metavar="SEQ", help="start sequence"
    )
    parser.add_argument("--tenant-type", default="")
    parser.add_argument("--tenant-name", default="")
    parser.add_argument("--actor", default="")
    parser.add_argument(
        "--limit", type=non_negative_int, default=0, help="stop after N activities (0 = never)"
    )
    add_output(
        parser,
        detail="table and wide (more columns) print a header row, then a row per activity as it "
        "arrives; "
        "json one object per line; yaml one document per activity",
    )
    parser.add_argument("--no-headers", action="store_true", help="table output without headers")
    parser.add_argument(
        "--nats-url", default=None, help="NATS URL (env ACTIVITY_NATS_URL; nats://127.0.0.1:4222)"
    )
    parser.set_defaults(handler=_handle)


def watch_table(
    wide: bool, relative: bool, show_headers: bool = True
) -> tuple[StreamTable, Callable[[Watched], list[str]]]:
    """The table of ``activity watch`` and a function turning a :class:`Watched` into its row.

    The columns are ``activity query``'s with the stream sequence (``SEQ``) first; in a terminal
    times are ages (``5m ago``), else RFC3339.
    """
    from processor.query.output import COLUMNS, StreamTable, age

    columns = COLUMNS["activities"](wide)
    headers = ["SEQ", *(name for name, _ in columns)]
    widths = [_MIN_WIDTHS.get(h, 0) for h in headers]
    if relative:
        widths[1] = 8
    table = StreamTable(headers, sys.stdout, widths, show_headers)

    def row(item: Watched) -> list[str]:
        cells = [get(item.activity) for _, get in columns]
        if relative:
            cells[0] = age(cells[0])
        return [str(item.sequence), *cells]

    return table, row


async def _run(url: str, spec: WatchSpec, args: argparse.Namespace) -> None:
    import orjson

    from processor.output import dump
    from processor.query.output import is_terminal
    from processor.query.watch import watch

    human = args.output in ("table", "wide")
    table, row = watch_table(args.output == "wide", is_terminal(sys.stdout), not args.no_headers)
    if human and is_terminal(sys.stderr):
        print("Watching for activities... (press Ctrl+C to stop)", file=sys.stderr)
    async for item in watch(url, spec, args.limit):
        if args.output == "json":
            sys.stdout.write(orjson.dumps(item.activity).decode() + "\n")
        elif args.output == "yaml":
            sys.stdout.write("---\n" + dump(item.activity, "yaml"))
        else:
            table.write(row(item))
        sys.stdout.flush()


def _handle(args: argparse.Namespace) -> int:
    import asyncio

    from nats.errors import Error as NatsError

    from processor.query.errors import QueryError
    from processor.query.watch import WatchSpec

    url = args.nats_url or os.environ.get("ACTIVITY_NATS_URL") or "nats://127.0.0.1:4222"
    spec = WatchSpec(
        filter=args.filter,
        since=args.since,
        tenant_type=args.tenant_type,
        tenant_name=args.tenant_name,
        actor=args.actor,
    )
    try:
        spec.compile()
        spec.subject()
        asyncio.run(_run(url, spec, args))
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError, NatsError) as exc:
        print(f"error: cannot watch {url}: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    return 0
