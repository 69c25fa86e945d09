"""Kafka transport settings: brokers, topic names, partitions, consumer group and timeouts.

The defaults are the topic names of docs/kafka.md. The session and rebalance timeouts are 10 s:
with the clients' defaults a group join on tansu took about 30 s, with 10 s about 5 s (measured,
issue 27). The producers compress their record batches with :data:`DEFAULT_COMPRESSION`
(docs/kafka.md#compression: on tansu, zstd read EventLists about 3x faster than none).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ACTIVITY_TOPIC",
    "AUDIT_TOPIC",
    "COMPRESSIONS",
    "DEAD_LETTER_TOPIC",
    "DEFAULT_BROKERS",
    "DEFAULT_COMPRESSION",
    "DEFAULT_GROUP",
    "DEFAULT_PARTITIONS",
    "EVENT_TOPIC",
    "POLICY_TOPIC",
    "KafkaSettings",
]

DEFAULT_BROKERS = "127.0.0.1:9092"
AUDIT_TOPIC = "audit-events"
EVENT_TOPIC = "k8s-events"
ACTIVITY_TOPIC = "activities"
DEAD_LETTER_TOPIC = "activity-dead-letters"
POLICY_TOPIC = "activity-policies"
DEFAULT_GROUP = "activity-processor"
DEFAULT_PARTITIONS = 8
#: The producers' record batch codecs (Kafka's ``compression.type``; lz4, zstd and snappy through
#: ``cramjam``), and the one measured best on tansu (docs/kafka.md#compression).
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
DEFAULT_COMPRESSION = "zstd"


@dataclass(frozen=True)
class KafkaSettings:
    """Where the Kafka transport reads and writes.

    Attributes:
        brokers: ``host:port[,host:port...]`` bootstrap servers.
        audit_topic: audit events in (key: ``apiGroup/resource/namespace/name``).
        event_topic: Kubernetes Events in (key: the involved object's key).
        activity_topic: Activities out.
        dead_letter_topic: dead letters out (docs/reliability.md).
        policy_topic: policy updates (a compacted topic, like the NATS KV bucket).
        partitions: partitions of the input topics (the CRC-32 partition function's modulus).
        group_id: the workers' consumer group.
        session_timeout: seconds without heartbeats before the group drops a member.
        rebalance_timeout: seconds members have to rejoin during a rebalance.
        heartbeat_interval: seconds between heartbeats (well under ``session_timeout``).
        fetch_max_wait: seconds the broker may hold a fetch for partitions with nothing new.
            aiokafka keeps one fetch per broker in flight, so a long wait for drained partitions
            holds back the others (the client's 0.5 s halved the worker's rate on tansu).
        max_records: records per ``getmany`` (one group for the pipeline).
        compression: the codec of the batches this side produces (:data:`COMPRESSIONS`);
            consumers decode every codec whatever this says.
    """

    brokers: str = DEFAULT_BROKERS
    audit_topic: str = AUDIT_TOPIC
    event_topic: str = EVENT_TOPIC
    activity_topic: str = ACTIVITY_TOPIC
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    policy_topic: str = POLICY_TOPIC
    partitions: int = DEFAULT_PARTITIONS
    group_id: str = DEFAULT_GROUP
    session_timeout: float = 10.0
    rebalance_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    fetch_max_wait: float = 0.05
    max_records: int = 256
    compression: str = DEFAULT_COMPRESSION

    def __post_init__(self) -> None:
        problems = []
        if not self.brokers.strip():
            problems.append("brokers must not be empty")
        if self.partitions < 1:
            problems.append("partitions must be at least 1")
        for name in ("session_timeout", "rebalance_timeout", "heartbeat_interval"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if self.heartbeat_interval >= self.session_timeout:
            problems.append("heartbeat_interval must be less than session_timeout")
        if self.compression not in COMPRESSIONS:
            problems.append(
                f"compression must be one of {', '.join(COMPRESSIONS)}, got {self.compression!r}"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def bootstrap(self) -> list[str]:
        """The brokers as a list for the clients."""
        return [b.strip() for b in self.brokers.split(",") if b.strip()]

    @property
    def input_topics(self) -> tuple[str, str]:
        """The topics the workers consume."""
        return (self.audit_topic, self.event_topic)

    def consumer_options(self) -> dict[str, int | str]:
        """aiokafka consumer options for the group (milliseconds as the client wants them)."""
        return {
            "group_id": self.group_id,
            "session_timeout_ms": int(self.session_timeout * 1000),
            "rebalance_timeout_ms": int(self.rebalance_timeout * 1000),
            "heartbeat_interval_ms": int(self.heartbeat_interval * 1000),
            "fetch_max_wait_ms": int(self.fetch_max_wait * 1000),
        }
