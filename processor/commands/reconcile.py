"""``activity reconcile``: the inventory sidecar (condition transitions in audit -> Events).

The NATS and consumer flags are the worker's (``processor.config``: same names, same
``ACTIVITY_*`` variables, same ``--config`` file), so a sidecar shares its worker's environment.
The reconciler's own flags read ``ACTIVITY_RECONCILER_<FLAG>``; ``--namespace`` also reads
``INVENTORY_ACTIVITY_NAMESPACE`` (the inventory controllers' variable) and ``--instance``
``POD_NAME``. ``--transport kafka`` runs it on Kafka (:mod:`processor.kafka.reconcile`): the
consumer name is then its consumer group, the state bucket its Faust table.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from processor.config import add_arguments, build_settings, convert_value

#: Worker settings the reconciler shares (flags and variables as in ``activity run``).
SHARED = (
    "nats_url",
    "partition_count",
    "partitions",
    "shared_consumer",
    "provision",
    "pull_batch",
    "pull_max_bytes",
    "pull_budget_bytes",
    "ack_wait",
    "max_ack_pending",
    "log_level",
)

#: Worker settings of ``--transport kafka`` (the reconciler's group is ``--consumer-name``).
KAFKA = ("transport", "kafka_brokers", "kafka_audit_topic", "kafka_event_topic")

#: own field -> (help, extra environment variables read after ACTIVITY_RECONCILER_<NAME>).
OWN: dict[str, tuple[str, tuple[str, ...]]] = {
    "namespace": (
        "namespace of the derived Events, published on events.<namespace>",
        ("INVENTORY_ACTIVITY_NAMESPACE",),
    ),
    "consumer_name": ("base name of the reconciler's durable consumers", ()),
    "state_bucket": ("NATS KV bucket of per-object state", ()),
    "conditions": ("condition types followed, comma separated", ()),
    "grace": ("seconds a derived Event waits for the controller's own Event (0 = none)", ()),
    "controller_window": ("seconds within which a controller Event matches a write", ()),
    "instance": ("reportingInstance of derived Events", ("POD_NAME",)),
    "health_addr": ("HOST:PORT of /healthz, /readyz and /metrics ('' = off)", ()),
}


def register(subparsers: Any) -> None:
    """Add ``activity reconcile``."""
    parser = subparsers.add_parser(
        "reconcile",
        help="run the inventory reconciler (condition transitions -> Events)",
        description="Follow the Ready and EndpointsResolved conditions of inventory objects in "
        "the audit stream and publish an events.k8s.io/v1 Event on each transition, as the "
        "inventory controllers' event recorder does; Events those controllers emit themselves "
        "are recognised and not duplicated. Runs beside a worker (see docs/inventory.md).",
    )
    add_arguments(parser, only=SHARED + KAFKA)
    from processor.reconciler.settings import ReconcilerSettings

    defaults = ReconcilerSettings()
    for name, (text, extra) in OWN.items():
        default = getattr(defaults, name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        env = ", ".join((f"ACTIVITY_RECONCILER_{name.upper()}", *extra))
        parser.add_argument(
            "--" + name.replace("_", "-"),
            default=None,
            metavar="VALUE",
            help=f"{text} (env {env}; default {shown!r})",
        )
    parser.set_defaults(handler=_handle)


def reconciler_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Any:
    """Build the :class:`~processor.reconciler.settings.ReconcilerSettings` of the command.

    Raises:
        ValueError: a value has the wrong type or the result is invalid.
    """
    from processor.reconciler.settings import ReconcilerSettings

    env = os.environ if environ is None else environ
    shared = build_settings(args, env)
    values: dict[str, Any] = {name: getattr(shared, name) for name in SHARED}
    defaults = ReconcilerSettings()
    for name, (_, extra) in OWN.items():
        raw = getattr(args, name, None) if args is not None else None
        for var in (f"ACTIVITY_RECONCILER_{name.upper()}", *extra):
            if raw is None:
                raw = env.get(var) or None
        if raw is not None:
            values[name] = convert_value(name, raw, getattr(defaults, name))
    return ReconcilerSettings(**values)


def _handle(args: argparse.Namespace) -> int:
    from processor.commands.run import run_loop
    from processor.logging import setup_logging
    from processor.reconciler.service import Reconciler

    try:
        settings = reconciler_settings(args)
        setup_logging(settings.log_level)
        shared = build_settings(args)
        if shared.transport == "kafka":
            from processor.kafka.reconcile import KafkaReconciler

            reconciler: Reconciler = KafkaReconciler(settings, shared.kafka())
        else:
            reconciler = Reconciler(settings)  # checks --partitions
    except ValueError as exc:
        print(f"activity reconcile: {exc}", file=sys.stderr)
        return 2
    run_loop(reconciler.serve())
    return 0
