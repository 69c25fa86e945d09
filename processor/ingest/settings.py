"""Settings of ``activity ingest``: one frozen, validated object from flags and the environment.

Every field is declared once in :data:`FIELDS`, which drives the flags (``--field-name``) and the
environment lookup. The settings the ingest shares with the workers (:data:`SHARED`: NATS URL,
partition count, provisioning, log level) read the workers' variables, ``ACTIVITY_<NAME>``, so one
ConfigMap serves both and both agree on the partition count; the ingest's own read
``ACTIVITY_INGEST_<NAME>``. A flag wins over its variable, which wins over the default.

Imported when the CLI parser is built: nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from processor.config import (
    add_field_arguments,
    field_defaults,
    field_values,
    is_host_port,
    kafka_compression_problems,
)
from processor.kafka.settings import DEFAULT_COMPRESSION

if TYPE_CHECKING:
    from processor.kafka.settings import KafkaSettings

__all__ = [
    "FIELDS",
    "SHARED",
    "IngestSettings",
    "add_arguments",
    "build_ingest_settings",
    "env_name",
]

MIB = 1 << 20


@dataclass(frozen=True)
class IngestSettings:
    """Everything the ingest server needs; see :data:`FIELDS` for the meaning of each field."""

    nats_url: str = "nats://127.0.0.1:4222"
    partition_count: int = 8
    provision: bool = True
    log_level: str = "INFO"
    listen_addr: str = "127.0.0.1:8443"
    health_addr: str = ""
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    client_ca_file: str = ""
    token_file: str = ""
    max_body_bytes: int = 32 * MIB
    batch_items: int = 100
    batch_bytes: int = MIB - 16 * 1024
    linger_ms: float = 0.0
    publish_timeout: float = 5.0
    retry_after: int = 5
    also_publish_shared: bool = False
    kafka_brokers: str = ""
    kafka_audit_topic: str = "audit-events"
    kafka_event_topic: str = "k8s-events"
    kafka_dead_letter_topic: str = "activity-dead-letters"
    kafka_compression: str = DEFAULT_COMPRESSION

    def __post_init__(self) -> None:
        problems = []
        if self.partition_count < 1:
            problems.append("partition_count must be at least 1")
        for name in ("max_body_bytes", "batch_items", "retry_after"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if self.batch_bytes < 1024:
            problems.append("batch_bytes must be at least 1024")
        if self.linger_ms < 0:
            problems.append("linger_ms must not be negative")
        if self.publish_timeout <= 0:
            problems.append("publish_timeout must be positive")
        if bool(self.tls_cert_file) != bool(self.tls_private_key_file):
            problems.append("tls_cert_file and tls_private_key_file go together")
        if self.client_ca_file and not self.tls_cert_file:
            problems.append("client_ca_file needs TLS (tls_cert_file and tls_private_key_file)")
        for name in ("listen_addr", "health_addr"):
            value = getattr(self, name)
            if (value or name == "listen_addr") and not is_host_port(value):
                problems.append(f"{name} must be HOST:PORT, got {value!r}")
        if self.kafka_brokers and self.also_publish_shared:
            problems.append("also_publish_shared is for NATS (upstream's subject), not Kafka")
        problems += kafka_compression_problems(self.kafka_compression)
        if problems:
            raise ValueError("invalid ingest settings: " + "; ".join(problems))

    @property
    def tls(self) -> bool:
        """Whether the webhook listener speaks TLS."""
        return bool(self.tls_cert_file)

    def kafka(self) -> KafkaSettings:
        """The Kafka transport's settings (``--kafka-brokers``)."""
        from processor.kafka.settings import KafkaSettings

        return KafkaSettings(
            brokers=self.kafka_brokers,
            audit_topic=self.kafka_audit_topic,
            event_topic=self.kafka_event_topic,
            dead_letter_topic=self.kafka_dead_letter_topic,
            partitions=self.partition_count,
            compression=self.kafka_compression,
        )


#: field name -> help text (the flag is ``--field-name``; the variable :func:`env_name`).
FIELDS: dict[str, str] = {
    "nats_url": "NATS server URL(s), comma separated",
    "partition_count": "number of partitions of the input subjects; must equal the workers' "
    "(docs/design.md#d13)",
    "provision": "create missing streams (otherwise they must exist)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "listen_addr": "HOST:PORT of the webhook listener (/audit, /, /events, and /healthz, /readyz, "
    "/metrics)",
    "health_addr": "HOST:PORT of a plain-HTTP listener of /healthz, /readyz and /metrics only "
    "('' = off)",
    "tls_cert_file": "PEM certificate (chain) of the webhook listener; without it plain HTTP",
    "tls_private_key_file": "PEM private key of --tls-cert-file",
    "client_ca_file": "PEM CA bundle: a client certificate it verifies authenticates a request "
    "(a missing certificate gets 401, not a handshake failure)",
    "token_file": "file of accepted bearer tokens, one per line ('#' comments); re-read when it "
    "changes",
    "max_body_bytes": "largest request body; larger ones get 413",
    "batch_items": "most records per published EventList message",
    "batch_bytes": "most bytes per published EventList message (also bounded by the stream's "
    "max_msg_size and the server's max_payload)",
    "linger_ms": "gather records of concurrent requests for up to this many ms before "
    "publishing (0 = per request; message ids are then no longer stable across retries)",
    "publish_timeout": "seconds without a PubAck before the request gets 503",
    "retry_after": "seconds in the Retry-After header of 429 and 503 answers",
    "also_publish_shared": "also publish every record alone in upstream's form for upstream "
    "processors running side by side: audit records to audit.k8s.activity (message id: the "
    "auditID), Events to events.<namespace> (message id: the uid)",
    "kafka_brokers": "HOST:PORT[,...]: publish to the Kafka transport's topics instead of NATS "
    "('' = NATS)",
    "kafka_audit_topic": "Kafka topic of audit records (with --kafka-brokers)",
    "kafka_event_topic": "Kafka topic of Kubernetes Events (with --kafka-brokers)",
    "kafka_dead_letter_topic": "Kafka topic of dead letters (with --kafka-brokers)",
    "kafka_compression": "codec of the record batches sent to Kafka: none, gzip, snappy, lz4 or "
    "zstd (with --kafka-brokers; docs/kafka.md#compression)",
}

#: Fields read from the workers' variables (``ACTIVITY_<NAME>``), not ``ACTIVITY_INGEST_<NAME>``.
SHARED = frozenset(
    {
        "nats_url",
        "partition_count",
        "provision",
        "log_level",
        "kafka_audit_topic",
        "kafka_event_topic",
        "kafka_dead_letter_topic",
        "kafka_compression",
    }
)


def env_name(field: str) -> str:
    """The variable of ``field``: ``ACTIVITY_NATS_URL``, ``ACTIVITY_INGEST_TOKEN_FILE``..."""
    return f"ACTIVITY_{field.upper()}" if field in SHARED else f"ACTIVITY_INGEST_{field.upper()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`IngestSettings` (all default to None = not given)."""
    add_field_arguments(parser, FIELDS, field_defaults(IngestSettings), env_name)


def build_ingest_settings(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> IngestSettings:
    """Build :class:`IngestSettings` from flags, the environment and ``overrides``.

    Raises:
        ValueError: a value has the wrong type or the result is invalid.
    """
    values = field_values(FIELDS, field_defaults(IngestSettings), env_name, args, environ)
    values.update(overrides)
    return IngestSettings(**values)
