"""Prometheus metrics of the worker: upstream names (``docs/design.md#pipeline-11``) plus the
runtime's own.

Each :class:`Metrics` owns a ``CollectorRegistry`` (several workers can live in one test process).
The hot path never touches a labelled metric per record: the pipeline counts per batch, and label
children are cached by prometheus-client. Every metric here is listed in ``docs/metrics.md``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from processor.sink.base import TABLES

NS = "activity_processor"
PUBLISH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
FLUSH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 10, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000)
#: ``events_errored_total{error_type}`` values (``publish`` only for audit records).
ERROR_TYPES = ("evaluate", "unmarshal", "publish")
#: ``events_skipped_total{reason}`` values per source (``processor.engine``'s skip reasons).
SKIP_REASONS = {
    "audit_log": ("no_object_ref", "stage", "no_matching_policy"),
    "k8s_event": ("null_event", "no_involved_object", "no_matching_policy"),
}


def nats_connection_metrics(
    namespace: str, registry: CollectorRegistry
) -> tuple[Gauge, Counter, Counter]:
    """``<namespace>_nats_connection_status`` (1 when connected), ``_nats_disconnects_total`` and
    ``_nats_reconnects_total``: what :func:`processor.stream.connection.connect_options` feeds,
    the same for every process that connects (worker, ingest)."""
    return (
        Gauge(f"{namespace}_nats_connection_status", "1 when connected to NATS", registry=registry),
        Counter(f"{namespace}_nats_disconnects_total", "NATS disconnects", registry=registry),
        Counter(f"{namespace}_nats_reconnects_total", "NATS reconnects", registry=registry),
    )


class Metrics:
    """The worker's metrics on a private registry."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        # -- upstream names --------------------------------------------------------------------
        self.events_received = Counter(
            f"{NS}_events_received_total",
            "Input records received",
            ["source", "api_group", "resource"],
            registry=r,
        )
        self.events_skipped = Counter(
            f"{NS}_events_skipped_total",
            "Records no policy wants",
            ["source", "reason"],
            registry=r,
        )
        self.events_errored = Counter(
            f"{NS}_events_errored_total",
            "Records that failed",
            ["source", "error_type"],
            registry=r,
        )
        self.activities_generated = Counter(
            f"{NS}_activities_generated_total",
            "Activities produced",
            ["policy", "api_group", "kind"],
            registry=r,
        )
        self.active_policies = Gauge(f"{NS}_active_policies", "Loaded policies", registry=r)
        self.active_workers = Gauge(f"{NS}_active_workers", "Running consumers", registry=r)
        self.nats_connection_status, self.nats_disconnects, self.nats_reconnects = (
            nats_connection_metrics(NS, r)
        )
        self.nats_errors = Counter(f"{NS}_nats_errors_total", "NATS async errors", registry=r)
        self.messages_published = Counter(
            f"{NS}_nats_messages_published_total", "Activities published to NATS", registry=r
        )
        self.publish_latency = Histogram(
            f"{NS}_nats_publish_latency_seconds",
            "Activity publish latency (per batch)",
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.dlq_published = Counter(
            f"{NS}_dlq_events_published_total",
            "Dead letters published",
            ["event_type", "api_group", "kind", "error_type", "policy_name"],
            registry=r,
        )
        self.max_deliveries = Counter(
            f"{NS}_max_deliveries_total",
            "Inputs NATS stopped redelivering (MaxDeliver reached); each is dead-lettered",
            ["stream", "consumer"],
            registry=r,
        )
        self.dlq_publish_latency = Histogram(
            f"{NS}_dlq_publish_latency_seconds",
            "Dead-letter publish latency (per batch)",
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.dlq_publish_errors = Counter(
            f"{NS}_dlq_publish_errors_total",
            "Dead-letter publish failures",
            ["event_type", "error_phase"],
            registry=r,
        )
        self.dlq_retry_attempts = Counter(
            f"{NS}_dlq_retry_attempts_total",
            "Dead letters republished",
            ["trigger", "api_group", "kind", "result"],
            registry=r,
        )
        # -- runtime ---------------------------------------------------------------------------
        self.partition_records = Counter(
            f"{NS}_partition_records_total",
            "Input records per partition",
            ["source", "partition"],
            registry=r,
        )
        self.partition_messages = Counter(
            f"{NS}_partition_messages_total",
            "Input messages per partition",
            ["source", "partition"],
            registry=r,
        )
        self.consumer_pending = Gauge(
            f"{NS}_consumer_pending_messages",
            "Messages not yet delivered (consumer lag)",
            ["stream", "consumer"],
            registry=r,
        )
        self.consumer_ack_pending = Gauge(
            f"{NS}_consumer_ack_pending_messages",
            "Delivered, not yet acknowledged",
            ["stream", "consumer"],
            registry=r,
        )
        self.commit_latency = Histogram(
            f"{NS}_input_commit_duration_seconds",
            "Settling a committed batch's inputs: NATS ack write, Kafka offset commit",
            ["transport"],
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self.kafka_rebalances = Counter(
            f"{NS}_kafka_rebalances_total",
            "Kafka consumer-group partition assignments and revocations",
            ["event"],
            registry=r,
        )
        self.kafka_assigned = Gauge(
            f"{NS}_kafka_assigned_partitions",
            "Kafka input partitions this worker owns",
            ["topic"],
            registry=r,
        )
        self.batch_rows = Histogram(
            f"{NS}_sink_batch_rows",
            "Rows per ClickHouse insert",
            ["table"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.flush_latency = Histogram(
            f"{NS}_sink_flush_duration_seconds",
            "ClickHouse insert duration",
            ["table"],
            buckets=FLUSH_BUCKETS,
            registry=r,
        )
        self.sink_errors = Counter(
            f"{NS}_sink_errors_total", "Failed ClickHouse inserts (retried)", ["table"], registry=r
        )
        self.records_committed = Counter(
            f"{NS}_records_committed_total", "Input records committed and acknowledged", registry=r
        )
        self.pending_records = Gauge(
            f"{NS}_pending_records", "Records waiting for a flush and ack", registry=r
        )
        self.oldest_pending = Gauge(
            f"{NS}_oldest_pending_seconds",
            "Seconds the oldest received and not yet acknowledged input has waited",
            registry=r,
        )
        self.paused = Gauge(
            f"{NS}_fetch_paused", "1 while fetching is paused (backpressure)", registry=r
        )
        self.policy_reloads = Counter(
            f"{NS}_policy_reloads_total", "Policy set reloads", ["source", "result"], registry=r
        )
        self.consumer_stalls = Counter(
            f"{NS}_consumer_stalls_total",
            "Pull consumers restarted by the stall watchdog",
            registry=r,
        )
        self.last_flush = Gauge(
            f"{NS}_last_flush_timestamp_seconds",
            "Unix time of the last committed batch",
            registry=r,
        )
        self.build_info = Info(f"{NS}_build", "Version and active implementation", registry=r)
        # The failure series whose label values are known up front exist from the start at 0:
        # rate() and alerts see the first failure, and the dashboard shows 0, not "no data".
        for source, kinds in (("audit_log", ERROR_TYPES), ("k8s_event", ERROR_TYPES[:2])):
            for error_type in kinds:
                self.events_errored.labels(source, error_type)
        for table in TABLES:
            self.sink_errors.labels(table)
        for source, reasons in SKIP_REASONS.items():
            for reason in reasons:
                self.events_skipped.labels(source, reason)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
