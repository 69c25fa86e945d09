"""``activity watch``: live activities from the ACTIVITIES stream, resumable from a sequence."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import orjson
from nats.errors import Error as NatsError

from processor.commands.argtypes import non_negative_int
from processor.query.errors import QueryError
from processor.query.output import age, format_rows, is_terminal, truncate
from processor.query.watch import Watched, WatchSpec, watch


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
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument(
        "--nats-url", default=None, help="NATS URL (env ACTIVITY_NATS_URL; nats://127.0.0.1:4222)"
    )
    parser.set_defaults(handler=_handle)


def _line(item: Watched, relative: bool) -> str:
    spec = item.activity.get("spec") or {}
    when = str((item.activity.get("metadata") or {}).get("creationTimestamp", ""))
    actor = str((spec.get("actor") or {}).get("name", ""))
    summary = truncate(str(spec.get("summary", "")), 100)
    return format_rows([[str(item.sequence), age(when) if relative else when, actor, summary]])[0]


async def _run(url: str, spec: WatchSpec, args: argparse.Namespace) -> None:
    relative = is_terminal(sys.stdout)
    if args.output == "table" and is_terminal(sys.stderr):
        print("Watching for activities... (press Ctrl+C to stop)", file=sys.stderr)
    async for item in watch(url, spec, args.limit):
        if args.output == "json":
            sys.stdout.write(orjson.dumps(item.activity).decode() + "\n")
        else:
            sys.stdout.write(_line(item, relative) + "\n")
        sys.stdout.flush()


def _handle(args: argparse.Namespace) -> int:
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
