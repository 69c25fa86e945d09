"""``activity serve``: upstream's Activity API (``activity.miloapis.com/v1alpha1``) over HTTP(S),
so ``kubectl`` and the upstream clients read the stored timelines (``docs/api.md``).

Every flag also reads an environment variable (:mod:`processor.serve.settings`). Building the
parser imports neither aiohttp nor the query layer.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``activity serve``."""
    from processor.serve.settings import add_arguments

    parser = subparsers.add_parser(
        "serve",
        help="serve the Activity API (kubectl get activities, query resources, watch)",
        description="Serve upstream's Activity API, activity.miloapis.com/v1alpha1: the "
        "create-only query resources (auditlogqueries, activityqueries, eventqueries, the facet "
        "queries, policypreviews), activities list/get/watch, and the Events API (core v1 and "
        "events.k8s.io/v1) from the stored records, with Kubernetes discovery so kubectl works "
        "against it. Callers are scoped to their tenant (front-proxy headers over a verified "
        "client certificate). Shared flags read ACTIVITY_<FLAG>, the server's own "
        "ACTIVITY_SERVE_<FLAG>. See docs/api.md.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop
    from processor.logging import setup_logging
    from processor.serve.settings import build_serve_settings

    try:
        settings = build_serve_settings(args)
        setup_logging(settings.log_level)
    except ValueError as exc:
        print(f"activity serve: {exc}", file=sys.stderr)
        return 2
    from processor.serve.server import ApiServer

    server = ApiServer(settings)  # reads the TLS files, tokens and keys: errors before listening
    run_loop(server.serve())
    return 0
