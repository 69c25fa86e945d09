"""``activity dlq list|retry``: inspect and replay the dead-letter queue after a policy fix."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.commands.argtypes import non_negative_int
from processor.commands.flags import add_output


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="inspect or replay dead letters",
        description="Inspect the ACTIVITY_DEAD_LETTER queue or republish its records to the retry "
        "subjects (audit.k8s.retry, events.retry) that the workers read.",
    )
    actions = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="dead letters waiting, per subject")
    retry = actions.add_parser("retry", help="republish dead letters for another try")
    for sub in (listing, retry):
        sub.add_argument("--nats-url", default=None, help="NATS URL (env ACTIVITY_NATS_URL)")
    add_output(
        listing,
        detail="table and wide (the same columns): dead letters per subject; json and yaml: a "
        "List of {subject, count}",
    )
    retry.add_argument("--policy", default=None, help="only records of this policy")
    retry.add_argument("--type", dest="event_type", choices=("audit", "k8s-event"), default=None)
    retry.add_argument("--api-group", default=None, help="only this API group ('' = core)")
    retry.add_argument("--kind", default=None, help="only this Kind")
    retry.add_argument(
        "--limit", type=non_negative_int, default=0, help="at most this many (0 = all)"
    )
    listing.set_defaults(handler=_list)
    retry.set_defaults(handler=_retry)


def _url(args: argparse.Namespace) -> str:
    from processor.config import build_settings

    overrides = {"nats_url": args.nats_url} if args.nats_url else {}
    return build_settings(None, **overrides).nats_url


async def _with_js(url: str, fn: Any) -> Any:
    from processor.stream.connection import connect_command

    nc = await connect_command(url, "activity-dlq")
    try:
        return await fn(nc.jetstream())
    finally:
        await nc.drain()


def _list(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop
    from processor.output import dump
    from processor.query.output import format_rows
    from processor.stream.dlq import dead_letter_counts

    counts = run_loop(_with_js(_url(args), dead_letter_counts))
    if args.output in ("json", "yaml"):
        items = [{"subject": subject, "count": count} for subject, count in counts.items()]
        sys.stdout.write(dump({"apiVersion": "v1", "kind": "List", "items": items}, args.output))
    elif counts:
        rows = [["SUBJECT", "DEAD LETTERS"]]
        rows += [[subject, str(count)] for subject, count in counts.items()]
        print("\n".join(format_rows(rows)))
    print(f"{sum(counts.values())} dead letters", file=sys.stderr)
    return 0


def _retry(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop
    from processor.stream.dlq import retry_dead_letters

    async def retry(js: Any) -> Any:
        return await retry_dead_letters(
            js,
            policy=args.policy,
            event_type=args.event_type,
            api_group=args.api_group,
            kind=args.kind,
            limit=args.limit,
        )

    report = run_loop(_with_js(_url(args), retry))
    print(report)
    return 0 if not report.failed else 1
