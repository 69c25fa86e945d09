"""``activity policy apply|list|delete``: manage the policies every worker follows.

On NATS they are in a KV bucket; with ``--transport kafka`` in the compacted policy topic
(:mod:`processor.kafka.policies`).

``apply`` validates and compiles the files locally first (the same checks the workers run); an
invalid file is rejected with file, field path and position and nothing is written. Each policy is
stored under its name (the bucket's key, the topic's record key); workers pick the change up
within a second and swap their policy set without a restart.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.commands.flags import add_filename, add_output
from processor.config import add_arguments
from processor.errors import ProcessorError

DEFAULT_BUCKET = "activity-policies"
#: The worker's settings that choose Kafka and its policy topic (flags and variables as in
#: ``activity run``).
KAFKA_FIELDS = ("transport", "kafka_brokers", "kafka_policy_topic")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="apply, list or delete policies in the NATS KV bucket or Kafka topic the workers "
        "follow",
    )
    actions = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    apply = actions.add_parser("apply", help="validate policy files and store them in the bucket")
    add_filename(
        apply,
        nargs="+",
        required=True,
        help="ActivityPolicy files or directories (searched for *.yaml, *.yml)",
    )
    listing = actions.add_parser("list", help="policies stored in the bucket")
    add_output(
        listing,
        detail="table: name, resource and rule counts; wide adds the KV revision; json and "
        "yaml: a List of the stored ActivityPolicy objects",
    )
    delete = actions.add_parser("delete", help="remove a policy from the bucket")
    delete.add_argument("names", nargs="+", metavar="NAME")
    for sub in (apply, listing, delete):
        sub.add_argument("--nats-url", default=None, help="NATS URL (env ACTIVITY_NATS_URL)")
        sub.add_argument("--bucket", default=None, help="KV bucket (env ACTIVITY_POLICY_BUCKET)")
        add_arguments(sub, only=KAFKA_FIELDS)
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


def _kafka(args: argparse.Namespace) -> Any:
    """The :class:`KafkaSettings` of ``--transport kafka``, None for NATS."""
    from processor.config import build_settings

    try:
        settings = build_settings(args)
        return settings.kafka() if settings.transport == "kafka" else None
    except ValueError as exc:  # a config file or a setting: the user's to fix
        raise ProcessorError(str(exc)) from None


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
    import orjson

    from processor.commands.run import run_loop
    from processor.errors import PolicyErrors
    from processor.policy.compile import compile_set

    try:
        compiled = compile_set(args.filename, {}, stages=None, max_record_bytes=1)
    except PolicyErrors as exc:
        for error in exc.errors:
            print(error.with_excerpt(str(error)), file=sys.stderr)
        print("rejected: nothing was written", file=sys.stderr)
        return 1

    kafka = _kafka(args)
    if kafka is not None:
        from processor.kafka.policies import publish_policies

        items = [(p.name, orjson.dumps(p.raw)) for p in compiled.policies]
        run_loop(publish_policies(kafka, items))
        for name, _ in items:
            print(f"activitypolicy/{name} applied")
        return 0

    async def put(kv: Any) -> None:
        for policy in compiled.policies:
            await kv.put(policy.name, orjson.dumps(policy.raw))
            print(f"activitypolicy/{policy.name} applied")

    run_loop(_with_kv(args, put))
    return 0


def _list(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop
    from processor.output import dump

    async def entries(kv: Any) -> list[tuple[str, int, dict[str, Any]]]:
        import orjson

        try:
            names = sorted(await kv.keys())
        except Exception:  # nats-py raises NoKeysError for an empty bucket
            return []
        found = []
        for name in names:
            entry = await kv.get(name)
            try:
                doc = orjson.loads(entry.value or b"{}")
            except orjson.JSONDecodeError:
                doc = {}
            found.append((name, int(entry.revision or 0), doc if isinstance(doc, dict) else {}))
        return found

    kafka = _kafka(args)
    if kafka is not None:
        stored = run_loop(_topic_entries(kafka))
    else:
        stored = run_loop(_with_kv(args, entries))
    if args.output in ("json", "yaml"):
        items = [doc for _, _, doc in stored]
        sys.stdout.write(dump({"apiVersion": "v1", "kind": "List", "items": items}, args.output))
        return 0
    print_policy_table(stored, wide=args.output == "wide")
    return 0


async def _topic_entries(kafka: Any) -> list[tuple[str, int, dict[str, Any]]]:
    """(name, offset, policy) of every policy in the Kafka topic (the offset as revision)."""
    import orjson

    from processor.kafka.policies import read_policies

    found = []
    for name, (offset, value) in sorted((await read_policies(kafka)).items()):
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = {}
        found.append((name, offset, doc if isinstance(doc, dict) else {}))
    return found


def print_policy_table(stored: list[tuple[str, int, dict[str, Any]]], wide: bool) -> None:
    """Print (name, revision, policy) rows as a table with a header row (nothing if empty)."""
    from processor.query.output import format_rows

    if not stored:
        print("No policies found.", file=sys.stderr)
        return
    headers = ["NAME", "RESOURCE", "AUDIT RULES", "EVENT RULES", "REVISION"]
    width = len(headers) if wide else len(headers) - 1
    rows = [headers[:width]]
    for name, revision, doc in stored:
        spec = _mapping(doc.get("spec"))
        resource = _mapping(spec.get("resource"))
        group, kind = str(resource.get("apiGroup") or ""), str(resource.get("kind") or "")
        row = [
            name,
            f"{kind}.{group}" if group else kind,
            str(len(spec.get("auditRules") or [])),
            str(len(spec.get("eventRules") or [])),
            str(revision),
        ]
        rows.append(row[:width])
    print("\n".join(format_rows(rows)))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _delete(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop

    kafka = _kafka(args)
    if kafka is not None:
        from processor.kafka.policies import delete_policies

        run_loop(delete_policies(kafka, args.names))
        for name in args.names:
            print(f"activitypolicy/{name} deleted")
        return 0

    async def delete(kv: Any) -> None:
        for name in args.names:
            await kv.delete(name)
            print(f"activitypolicy/{name} deleted")

    run_loop(_with_kv(args, delete))
    return 0
