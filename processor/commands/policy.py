"""``activity policy apply|list|delete``: manage the policies every worker reads from NATS KV.

``apply`` validates and compiles the files locally first (the same checks the workers run); an
invalid file is rejected with file, field path and position and nothing is written. Each policy is
stored under its name in the bucket; workers pick the change up within a second and swap their
policy set without a restart.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from processor.commands.run import run_loop

DEFAULT_BUCKET = "activity-policies"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="apply, list or delete policies in the NATS KV bucket the workers follow",
    )
    actions = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    apply = actions.add_parser("apply", help="validate policy files and store them in the bucket")
    apply.add_argument(
        "-f",
        "--filename",
        nargs="+",
        required=True,
        metavar="PATH",
        help="ActivityPolicy files or directories (searched for *.yaml, *.yml)",
    )
    listing = actions.add_parser("list", help="policies stored in the bucket")
    delete = actions.add_parser("delete", help="remove a policy from the bucket")
    delete.add_argument("names", nargs="+", metavar="NAME")
    for sub in (apply, listing, delete):
        sub.add_argument("--nats-url", default=None, help="NATS URL (env ACTIVITY_NATS_URL)")
        sub.add_argument("--bucket", default=None, help="KV bucket (env ACTIVITY_POLICY_BUCKET)")
    apply.set_defaults(handler=_apply)
    listing.set_defaults(handler=_list)
    delete.set_defaults(handler=_delete)


def _settings(args: argparse.Namespace) -> tuple[str, str]:
    from processor.config import build_settings

    overrides = {}
    if args.nats_url:
        overrides["nats_url"] = args.nats_url
    if args.bucket:
        overrides["policy_bucket"] = args.bucket
    settings = build_settings(None, **overrides)
    return settings.nats_url, settings.policy_bucket or DEFAULT_BUCKET


async def _with_kv(args: argparse.Namespace, fn: Any) -> Any:
    from processor.stream.connection import connect_command

    url, bucket = _settings(args)
    nc = await connect_command(url, "activity-policy")
    try:
        js = nc.jetstream()
        try:
            kv = await js.key_value(bucket)
        except Exception:
            kv = await js.create_key_value(bucket=bucket, history=5)
        return await fn(kv)
    finally:
        await nc.drain()


def _apply(args: argparse.Namespace) -> int:
    from processor.errors import PolicyErrors
    from processor.policy.compile import compile_set

    try:
        compiled = compile_set(args.filename, {}, stages=None, max_record_bytes=1)
    except PolicyErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        print("rejected: nothing was written", file=sys.stderr)
        return 1

    async def put(kv: Any) -> None:
        for policy in compiled.policies:
            await kv.put(policy.name, orjson.dumps(policy.raw))
            print(f"activitypolicy/{policy.name} applied")

    run_loop(_with_kv(args, put))
    return 0


def _list(args: argparse.Namespace) -> int:
    async def keys(kv: Any) -> list[str]:
        try:
            return sorted(await kv.keys())
        except Exception:
            return []

    for name in run_loop(_with_kv(args, keys)):
        print(name)
    return 0


def _delete(args: argparse.Namespace) -> int:
    async def delete(kv: Any) -> None:
        for name in args.names:
            await kv.delete(name)
            print(f"activitypolicy/{name} deleted")

    run_loop(_with_kv(args, delete))
    return 0
