"""``activity kafka topics``: create the Kafka transport's topics with the partition count.

Idempotent: existing topics are kept (their partition count is checked for the input topics,
never changed). Prints one row per topic, ``-o json|yaml`` a List.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.commands.flags import add_output
from processor.config import add_arguments, build_settings

#: The settings fields the command reads (flags, ACTIVITY_* variables, --config).
FIELDS = (
    "kafka_brokers",
    "partition_count",
    "kafka_audit_topic",
    "kafka_event_topic",
    "kafka_activity_topic",
    "kafka_dead_letter_topic",
    "kafka_policy_topic",
)


def register(subparsers: Any) -> None:
    """Add the ``kafka`` sub-parser and its ``topics`` command."""
    parser = subparsers.add_parser(
        "kafka", help="Kafka transport tools", description="Kafka transport tools (docs/kafka.md)."
    )
    sub = parser.add_subparsers(dest="kafka_command", required=True, metavar="COMMAND")
    topics = sub.add_parser(
        "topics",
        help="create the topics with the partition count",
        description="Create the input, activity, dead-letter and policy topics (the input "
        "topics with --partition-count partitions); existing topics are kept.",
    )
    add_arguments(topics, only=FIELDS)
    add_output(topics, detail="table and wide: one row per topic; json and yaml: a List")
    topics.set_defaults(handler=_topics)


def _topics(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from processor.kafka.topics import ensure_topics
    from processor.output import dump
    from processor.query.output import format_rows

    try:
        settings = build_settings(args).kafka()
    except ValueError as exc:
        print(f"activity kafka topics: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the error below says it once
    states = asyncio.run(ensure_topics(settings))
    items = [{"topic": s.name, "partitions": s.partitions, "created": s.created} for s in states]
    if args.output in ("json", "yaml"):
        sys.stdout.write(dump({"apiVersion": "v1", "kind": "List", "items": items}, args.output))
        return 0
    rows = [["TOPIC", "PARTITIONS", "STATUS"]]
    rows += [[s.name, str(s.partitions), "created" if s.created else "exists"] for s in states]
    print("\n".join(format_rows(rows)))
    return 0
