"""``--transport`` and the Kafka flags of the commands that speak to Kafka (policy, reconcile,
demo, loadtest): each reads its ``ACTIVITY_*`` variable when the flag is not given."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["add_kafka_arguments", "kafka_settings", "transport_of"]

#: flag -> (KafkaSettings field, environment variable, help)
FLAGS = {
    "kafka_brokers": ("brokers", "ACTIVITY_KAFKA_BROKERS", "Kafka bootstrap servers HOST:PORT,..."),
    "audit_topic": ("audit_topic", "ACTIVITY_KAFKA_AUDIT_TOPIC", "audit input topic"),
    "event_topic": ("event_topic", "ACTIVITY_KAFKA_EVENT_TOPIC", "Kubernetes Events topic"),
    "policy_topic": ("policy_topic", "ACTIVITY_KAFKA_POLICY_TOPIC", "compacted policy topic"),
}


def add_kafka_arguments(parser: Any, *flags: str) -> None:
    """Add ``--transport nats|kafka`` and the named Kafka flags (default: all)."""
    from processor.kafka.settings import KafkaSettings

    defaults = KafkaSettings()
    parser.add_argument(
        "--transport",
        choices=("nats", "kafka"),
        default=None,
        help="message transport (env ACTIVITY_TRANSPORT; default nats)",
    )
    for flag in flags or tuple(FLAGS):
        field, env, text = FLAGS[flag]
        parser.add_argument(
            "--" + flag.replace("_", "-"),
            default=None,
            metavar="VALUE",
            help=f"{text} (env {env}; default {getattr(defaults, field)!r})",
        )


def transport_of(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str:
    """``nats`` or ``kafka``: the flag, else ``ACTIVITY_TRANSPORT``, else ``nats``."""
    env = os.environ if environ is None else environ
    value = getattr(args, "transport", None) or env.get("ACTIVITY_TRANSPORT") or "nats"
    if value not in ("nats", "kafka"):
        raise ValueError(f"ACTIVITY_TRANSPORT must be nats or kafka, not {value!r}")
    return value


def kafka_settings(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None, **fields: Any
) -> Any:
    """The :class:`~processor.kafka.settings.KafkaSettings` of the flags and variables.

    Args:
        fields: further fields (e.g. ``partitions``) that flags and variables override not.

    Raises:
        ValueError: an invalid value.
    """
    from processor.kafka.settings import KafkaSettings

    env = os.environ if environ is None else environ
    values: dict[str, Any] = dict(fields)
    for flag, (field, var, _) in FLAGS.items():
        raw = getattr(args, flag, None) or env.get(var)
        if raw:
            values[field] = raw
    return KafkaSettings(**values)
