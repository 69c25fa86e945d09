"""``activity run``: the stream worker (NATS JetStream or Kafka in, activities + ClickHouse out)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.config import add_arguments, build_settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a stream worker",
        description="Consume audit events and Kubernetes Events from NATS JetStream (or, with "
        "--transport kafka, from Kafka topics as a consumer group), translate them with the "
        "policies, publish activities (ACTIVITIES, or the activities topic) and store them in "
        "ClickHouse. "
        "Every flag also reads ACTIVITY_<FLAG> from the environment, and --config a YAML file.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=_handle)


def policy_paths(configured: tuple[str, ...]) -> list[str]:
    """The configured policy paths, or the bundled policies."""
    if configured:
        return list(configured)
    from processor.policy.bundled import bundled_policy_dir

    return [str(bundled_policy_dir())]


def run_loop(coro: Any) -> Any:
    """Run ``coro`` on uvloop when it is installed (about 1.7x on consume), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        import asyncio

        return asyncio.run(coro)
    return uvloop.run(coro)


def _handle(args: argparse.Namespace) -> int:
    from processor.errors import PolicyErrors
    from processor.logging import setup_logging
    from processor.worker.runner import Worker

    try:
        settings = build_settings(args)
        setup_logging(settings.log_level)
        if settings.transport == "kafka":
            from processor.kafka.worker import KafkaWorker

            worker: Worker = KafkaWorker(settings, policy_paths(settings.policies))
        else:
            worker = Worker(settings, policy_paths(settings.policies))  # checks --partitions
    except ValueError as exc:
        print(f"activity run: {exc}", file=sys.stderr)
        return 2
    try:
        run_loop(worker.serve())
    except PolicyErrors as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    return 0
