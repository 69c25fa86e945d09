"""``activity ingest``: the audit webhook and Event receiver that feeds the input partitions.

``activity ingest [flags]`` runs the server (:mod:`processor.ingest.server`);
``activity ingest webhook-config`` prints the file for kube-apiserver's
``--audit-webhook-config-file``. Every server flag also reads an environment variable
(:mod:`processor.ingest.settings`). Building the parser imports neither aiohttp nor nats-py.
``ACTIVITY_INGEST_PROFILE=FILE`` runs the server under cProfile and writes the stats to FILE when
it stops (``activity bench --ingest --profile``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``activity ingest`` and ``activity ingest webhook-config``."""
    from processor.ingest.settings import add_arguments

    parser = subparsers.add_parser(
        "ingest",
        help="receive audit webhooks and Events over HTTPS and publish them to the partitions",
        description="Serve kube-apiserver's audit webhook (POST /audit, /) and Kubernetes Events "
        "(POST /events), route every record to its input partition as the workers do, and "
        "answer 200 only after JetStream acknowledged the messages that hold it (429/503 with "
        "Retry-After otherwise). Shared flags read ACTIVITY_<FLAG>, the ingest's own "
        "ACTIVITY_INGEST_<FLAG>. See docs/ingest.md.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=_serve)
    actions = parser.add_subparsers(dest="ingest_command", metavar="ACTION")
    config = actions.add_parser(
        "webhook-config",
        help="print the kube-apiserver --audit-webhook-config-file for this ingest",
        description="Print a kubeconfig-format file that points kube-apiserver's audit webhook at "
        "the ingest: the server URL (/audit is added when it has no path), the CA that signed "
        "the ingest's certificate (embedded) and a bearer token (the first of --token-file) "
        "and/or a client certificate (embedded).",
    )
    config.add_argument(
        "--server", required=True, metavar="URL", help="the ingest URL, https://HOST:PORT"
    )
    config.add_argument(
        "--token-file", dest="webhook_token_file", default="", metavar="FILE",
        help="the ingest's token file; its first token authenticates kube-apiserver",
    )  # fmt: skip
    config.add_argument(
        "--certificate-authority", default="", metavar="FILE",
        help="PEM CA of the ingest's serving certificate",
    )  # fmt: skip
    config.add_argument(
        "--client-certificate", default="", metavar="FILE",
        help="PEM client certificate for kube-apiserver (the ingest's --client-ca-file signs it)",
    )  # fmt: skip
    config.add_argument(
        "--client-key", default="", metavar="FILE", help="PEM key of --client-certificate"
    )
    config.set_defaults(handler=_webhook_config)


def _serve(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop
    from processor.ingest.settings import build_ingest_settings
    from processor.logging import setup_logging

    try:
        settings = build_ingest_settings(args)
        setup_logging(settings.log_level)
    except ValueError as exc:
        print(f"activity ingest: {exc}", file=sys.stderr)
        return 2
    from processor.ingest.server import IngestServer

    server = IngestServer(settings)  # reads the TLS files and tokens: errors before listening
    profile = os.environ.get("ACTIVITY_INGEST_PROFILE", "")
    if not profile:
        run_loop(server.serve())
        return 0
    import cProfile  # a measuring aid (`activity bench --ingest --profile`), not a setting

    with cProfile.Profile() as profiler:
        run_loop(server.serve())
    profiler.dump_stats(profile)
    return 0


def _webhook_config(args: argparse.Namespace) -> int:
    import yaml

    from processor.ingest.webhook import webhook_config

    config = webhook_config(
        args.server,
        token_file=args.webhook_token_file,
        certificate_authority=args.certificate_authority,
        client_certificate=args.client_certificate,
        client_key=args.client_key,
    )
    sys.stdout.write(
        "# kube-apiserver --audit-webhook-config-file (docs/ingest.md); holds a credential: "
        "keep it private\n"
    )
    sys.stdout.write(yaml.safe_dump(config, sort_keys=False, default_flow_style=False))
    return 0
