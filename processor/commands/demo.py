"""``activity demo``: the whole pipeline locally (bundled nats-server + chDB), then the timeline."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.commands.run import run_loop


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline on a bundled scenario (no setup needed)",
        description="Start the bundled nats-server and chDB, run a worker with the bundled "
        "policies, publish a scenario of audit events and Kubernetes Events, print the resulting "
        "timeline and exit.",
    )
    parser.add_argument(
        "--data-dir", default=None, help="keep NATS and chDB data here (default: a temporary dir)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep running afterwards and print how to connect"
    )
    parser.add_argument("--log-level", default="WARNING", help="worker log level")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from processor.demo.run import demo_dir, run_demo
    from processor.logging import setup_logging

    setup_logging(args.log_level)
    with demo_dir(args.data_dir) as path:
        try:
            run_loop(run_demo(path, keep=args.keep, out=sys.stdout))
        except KeyboardInterrupt:
            return 0
        except TimeoutError as exc:
            print(f"activity demo: {exc}", file=sys.stderr)
            return 1
    return 0
