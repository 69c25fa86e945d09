"""Worker settings: one frozen, validated object from flags, ``ACTIVITY_*`` variables and a file.

Precedence, highest first: command-line flag, environment variable (``ACTIVITY_<NAME>``, e.g.
``ACTIVITY_NATS_URL``), the optional YAML config file (``--config`` / ``ACTIVITY_CONFIG``; keys
are the field names below, ``snake_case`` or ``kebab-case``), then the defaults. Every field is
declared once in :data:`FIELDS`, which drives the flags, the environment lookup and the file keys.
The server commands build their settings with the same pieces (:func:`add_field_arguments`,
:func:`field_values`, :func:`convert_value`): :mod:`processor.serve.settings`,
:mod:`processor.ingest.settings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from processor.kafka.settings import COMPRESSIONS, DEFAULT_COMPRESSION
from processor.stages import DEFAULT_STAGES

if TYPE_CHECKING:
    from processor.kafka.settings import KafkaSettings


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to run; see :data:`FIELDS` for the meaning of each field."""

    transport: str = "nats"
    nats_url: str = "nats://127.0.0.1:4222"
    kafka_brokers: str = "127.0.0.1:9092"
    kafka_group: str = "activity-processor"
    kafka_audit_topic: str = "audit-events"
    kafka_event_topic: str = "k8s-events"
    kafka_activity_topic: str = "activities"
    kafka_dead_letter_topic: str = "activity-dead-letters"
    kafka_policy_topic: str = "activity-policies"
    kafka_session_timeout: float = 10.0
    kafka_compression: str = DEFAULT_COMPRESSION
    clickhouse_url: str = ""
    migrate: bool = False
    policies: tuple[str, ...] = ()
    policy_bucket: str = "activity-policies"
    watch_interval: float = 2.0
    partition_count: int = 8
    partitions: str = "all"
    shared_consumer: bool = True
    consumer_name: str = "activity-processor"
    event_consumer_name: str = "activity-event-processor"
    provision: bool = True
    pull_batch: int = 256
    pull_max_bytes: int = 4 * 1024 * 1024
    pull_budget_bytes: int = 48 * 1024 * 1024
    ack_wait: float = 30.0
    max_deliver: int = 5
    max_ack_pending: int = 50_000
    batch_max_records: int = 10_000
    batch_max_bytes: int = 10 * 1024 * 1024
    batch_max_age: float = 1.0
    max_pending_records: int = 100_000
    sink_nice: int = 19
    stages: tuple[str, ...] = DEFAULT_STAGES
    max_record_bytes: int = 10 * 1024 * 1024
    store_raw: bool = False
    dlq_enabled: bool = True
    output_subject_prefix: str = "activities"
    health_addr: str = "127.0.0.1:8081"
    ready_max_pending_age: float = 120.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        problems = []
        if self.transport not in ("nats", "kafka"):
            problems.append(f"transport must be nats or kafka, got {self.transport!r}")
        if self.partition_count < 1:
            problems.append("partition_count must be at least 1")
        for name in (
            "pull_batch",
            "pull_max_bytes",
            "pull_budget_bytes",
            "batch_max_records",
            "batch_max_bytes",
            "max_pending_records",
            "max_record_bytes",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("ack_wait", "batch_max_age", "watch_interval", "ready_max_pending_age"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if 0 < self.ready_max_pending_age <= self.batch_max_age:
            # every batch waits up to batch_max_age: readiness would flap under normal load
            problems.append("ready_max_pending_age must be greater than batch_max_age")
        if not 0 <= self.sink_nice <= 19:
            problems.append("sink_nice must be between 0 and 19")
        if self.max_pending_records < self.batch_max_records:
            problems.append("max_pending_records must be at least batch_max_records")
        problems += kafka_compression_problems(self.kafka_compression)
        if problems:
            raise ValueError("invalid settings: " + "; ".join(problems))

    def kafka(self) -> KafkaSettings:
        """The Kafka transport's settings (``--transport kafka``); the input topics have
        ``partition_count`` partitions.

        Raises:
            ValueError: a Kafka setting is invalid.
        """
        from processor.kafka.settings import KafkaSettings

        return KafkaSettings(
            brokers=self.kafka_brokers,
            audit_topic=self.kafka_audit_topic,
            event_topic=self.kafka_event_topic,
            activity_topic=self.kafka_activity_topic,
            dead_letter_topic=self.kafka_dead_letter_topic,
            policy_topic=self.kafka_policy_topic,
            partitions=self.partition_count,
            group_id=self.kafka_group,
            session_timeout=self.kafka_session_timeout,
            rebalance_timeout=self.kafka_session_timeout,
            compression=self.kafka_compression,
        )

    def resolved_clickhouse_url(self) -> str:
        """The ClickHouse URL, defaulting to chDB in the data directory."""
        from processor.sink.factory import default_data_dir

        return self.clickhouse_url or f"chdb://{default_data_dir() / 'chdb'}"


#: field name -> help text (the flag is ``--field-name``, the variable ``ACTIVITY_FIELD_NAME``).
FIELDS: dict[str, str] = {
    "transport": "nats (JetStream) or kafka (a consumer group; docs/kafka.md)",
    "nats_url": "NATS server URL(s), comma separated",
    "kafka_brokers": "Kafka bootstrap servers HOST:PORT[,HOST:PORT] (--transport kafka)",
    "kafka_group": "Kafka consumer group of the workers",
    "kafka_audit_topic": "Kafka topic of audit events (in)",
    "kafka_event_topic": "Kafka topic of Kubernetes Events (in)",
    "kafka_activity_topic": "Kafka topic of activities (out)",
    "kafka_dead_letter_topic": "Kafka topic of dead letters (out)",
    "kafka_policy_topic": "Kafka topic of policy updates (compacted)",
    "kafka_session_timeout": "seconds without heartbeats before the group drops a worker (also "
    "the rebalance timeout; tansu joins in ~5 s with 10, ~30 s with the client default)",
    "kafka_compression": "codec of the record batches the Kafka producers send: none, gzip, "
    "snappy, lz4 or zstd (docs/kafka.md#compression)",
    "clickhouse_url": "chdb:///DIR (embedded), clickhouse://user:pw@host:9000/audit or memory://; "
    "default chdb in the data directory",
    "migrate": "apply pending ClickHouse migrations at start (always done for chdb://)",
    "policies": "policy files or directories (default: the bundled policies)",
    "policy_bucket": "NATS KV bucket of policies applied with `activity policy apply` ('' = off)",
    "watch_interval": "seconds between checks of the policy files for changes",
    "partition_count": "number of partitions of the input subjects (docs/design.md#d13)",
    "partitions": "partitions this worker owns: all, 0-3, 0,2,5-7",
    "shared_consumer": "also read the upstream subjects (audit.k8s.activity, events.<ns>)",
    "consumer_name": "durable audit consumer name (partition consumers add -p<N>)",
    "event_consumer_name": "durable event consumer name (partition consumers add -p<N>)",
    "provision": "create missing streams and consumers (otherwise they must exist)",
    "pull_batch": "messages per pull request",
    "pull_max_bytes": "bytes per pull request (bounds what is in flight to the worker)",
    "pull_budget_bytes": "bytes the pull requests of all consumers may have in flight together; "
    "keep below nats-server's max_pending (64 MB by default) or it drops the connection as a "
    "slow consumer (per request: the smaller of this share and pull-max-bytes)",
    "ack_wait": "seconds before an unacked message is redelivered (new consumers)",
    "max_deliver": "deliveries of an audit message before NATS gives up (new consumers)",
    "max_ack_pending": "unacked messages per consumer (new consumers)",
    "batch_max_records": "flush a ClickHouse batch at this many rows",
    "batch_max_bytes": "flush a ClickHouse batch at this many bytes",
    "batch_max_age": "flush a ClickHouse batch after this many seconds",
    "max_pending_records": "stop fetching while this many records wait for a flush",
    "sink_nice": "CPU priority (nice, 0-19) of the storage thread and of an embedded chDB's "
    "threads: inserts yield the cores to the stream (0 = same as the stream)",
    "stages": "audit stages to translate, comma separated",
    "max_record_bytes": "larger records are dead-lettered unread",
    "store_raw": "also store raw audit logs and Events (audit_logs, k8s_events)",
    "dlq_enabled": "publish failed records to ACTIVITY_DEAD_LETTER",
    "output_subject_prefix": "subject prefix of published activities",
    "health_addr": "HOST:PORT of /healthz, /readyz and /metrics ('' = off)",
    "ready_max_pending_age": "seconds the oldest unacknowledged input may wait before /readyz "
    "fails (sink or NATS wedged; liveness is not affected)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
}


def kafka_compression_problems(value: str) -> list[str]:
    """``[]``, or why ``value`` is no ``--kafka-compression`` (every settings builder's check)."""
    if value in COMPRESSIONS:
        return []
    return [f"kafka_compression must be one of {', '.join(COMPRESSIONS)}, got {value!r}"]


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _field_types() -> dict[str, Any]:
    return field_defaults(Settings)


def _convert(name: str, value: Any) -> Any:
    return convert_value(name, value, _field_types()[name])


def convert_value(name: str, value: Any, default: Any) -> Any:
    """``value`` (a flag's, a variable's or a file's) as the type of ``default``: booleans from
    ``true/false/1/0/yes/no/on/off``, tuples from comma-separated text (``policies``: the path
    separator), anything else through its type. Shared by every settings builder.

    Raises:
        ValueError: the value does not convert; the message names ``name``.
    """
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    if isinstance(default, tuple):
        if isinstance(value, str):
            sep = os.pathsep if name == "policies" else ","
            return tuple(part.strip() for part in value.split(sep) if part.strip())
        return tuple(str(v) for v in value)
    try:
        return type(default)(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {type(default).__name__}, got {value!r}") from None


def is_host_port(value: str) -> bool:
    """Whether ``value`` is ``HOST:PORT`` (the host may be empty: every address)."""
    host, sep, port = value.rpartition(":")
    return bool(sep) and port.isdigit() and int(port) < 65536 and "/" not in host


def field_defaults(cls: type) -> dict[str, Any]:
    """Field name -> default of the settings dataclass ``cls``."""
    return {f.name: f.default for f in dataclasses.fields(cls)}


def add_field_arguments(
    parser: argparse.ArgumentParser,
    fields: Mapping[str, str],
    defaults: Mapping[str, Any],
    env_name: Callable[[str], str],
) -> None:
    """One flag ``--field-name`` per entry of ``fields`` (name -> help text), all defaulting to
    None (not given); a boolean flag may stand alone (``--provision`` = ``--provision true``).
    The server commands' settings (:mod:`processor.serve.settings`,
    :mod:`processor.ingest.settings`) declare their fields this way."""
    for name, text in fields.items():
        default = defaults[name]
        shown = ",".join(default) if isinstance(default, tuple) else default
        flag = {"nargs": "?", "const": "true"} if isinstance(default, bool) else {}
        parser.add_argument(
            "--" + name.replace("_", "-"),
            default=None,
            metavar="VALUE",
            help=f"{text} (env {env_name(name)}; default {shown!r})",
            **flag,  # type: ignore[arg-type]
        )


def field_values(
    fields: Iterable[str],
    defaults: Mapping[str, Any],
    env_name: Callable[[str], str],
    args: argparse.Namespace | None,
    environ: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The given values of ``fields``, converted: a flag wins over its variable (``env_name``),
    which wins over the default (absent from the result).

    Raises:
        ValueError: a value has the wrong type.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in fields:
        raw = env.get(env_name(name))
        given = getattr(args, name, None) if args is not None else None
        if given is not None:
            raw = given
        if raw is not None:
            values[name] = convert_value(name, raw, defaults[name])
    return values


def add_arguments(parser: argparse.ArgumentParser, only: Sequence[str] | None = None) -> None:
    """Add ``--config`` and one flag per settings field (all default to None = not given)."""
    parser.add_argument("--config", default=None, help="YAML config file (env ACTIVITY_CONFIG)")
    defaults = _field_types()
    for name, text in FIELDS.items():
        if only is not None and name not in only:
            continue
        flag = "--" + name.replace("_", "-")
        default = defaults[name]
        shown = ",".join(default) if isinstance(default, tuple) else default
        help_text = f"{text} (env ACTIVITY_{name.upper()}; default {shown!r})"
        if name == "policies":  # -f/--filename: kubectl's spelling for files of resources
            parser.add_argument(
                "-f",
                "--filename",
                flag,
                dest=name,
                nargs="+",
                default=None,
                metavar="PATH",
                help=f"{help_text} ({flag} is the same option)",
            )
        else:
            parser.add_argument(flag, default=None, metavar="VALUE", help=help_text)


def _file_values(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import yaml  # here: building the parser must not import it

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ValueError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise ValueError(f"{where}: invalid YAML in the config file: {exc.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a YAML config file: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a config file must be a mapping of settings")
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in FIELDS:
            raise ValueError(f"{path}: unknown setting {key!r} (known: {', '.join(FIELDS)})")
        values[name] = value
    return values


def build_settings(
    args: argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings` from flags, the environment, the config file and ``overrides``.

    Raises:
        ValueError: a value has the wrong type or the result is invalid.
    """
    env = os.environ if environ is None else environ
    config_path = getattr(args, "config", None) or env.get("ACTIVITY_CONFIG")
    values: dict[str, Any] = _file_values(config_path)
    for name in FIELDS:
        raw = env.get(f"ACTIVITY_{name.upper()}")
        if raw is not None:
            values[name] = raw
        given = getattr(args, name, None) if args is not None else None
        if given is not None:
            values[name] = given
    values.update(overrides)
    return Settings(**{name: _convert(name, value) for name, value in values.items()})
