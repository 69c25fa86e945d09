"""Prometheus metrics of ``activity ingest`` (``activity_ingest_*``), on a private registry.

Counted per request or per published message, never per record: a request of 400 records moves
each labelled child once. Every metric is listed in ``docs/ingest.md`` (a unit test checks it).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from processor.metrics import nats_connection_metrics

NS = "activity_ingest"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 200, 400, 1000)
BODY_BUCKETS = (1024, 16_384, 65_536, 262_144, 1 << 20, 4 << 20, 16 << 20, 64 << 20)


class IngestMetrics:
    """The ingest server's metrics (one registry per instance, so tests can run several)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            f"{NS}_requests_total",
            "Requests answered, by endpoint source (audit, event, other) and HTTP status",
            ["source", "code"],
            registry=r,
        )
        self.records = Counter(
            f"{NS}_records_total",
            "Records acknowledged by JetStream, by source and partition (shared: "
            "audit.k8s.activity)",
            ["source", "partition"],
            registry=r,
        )
        self.bytes = Counter(
            f"{NS}_bytes_total",
            "Bytes of the messages acknowledged by JetStream, by source and partition",
            ["source", "partition"],
            registry=r,
        )
        self.messages = Counter(
            f"{NS}_messages_total",
            "Messages acknowledged by JetStream, by source and partition",
            ["source", "partition"],
            registry=r,
        )
        self.duplicates = Counter(
            f"{NS}_duplicate_messages_total",
            "Messages JetStream already held (same Nats-Msg-Id within the duplicate window): "
            "retried requests",
            ["source"],
            registry=r,
        )
        self.rejected = Counter(
            f"{NS}_rejected_total",
            "Records or bodies not published, by source and reason (malformed, too_large, "
            "not_object, null, unauthenticated)",
            ["source", "reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            f"{NS}_dead_letters_total",
            "Rejected list items published to ACTIVITY_DEAD_LETTER",
            ["source"],
            registry=r,
        )
        self.publish_latency = Histogram(
            f"{NS}_publish_latency_seconds",
            "Time from the first publish of a request to its last PubAck (or failure)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_records = Histogram(
            f"{NS}_batch_records",
            "Records per published partition message",
            ["source"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.body_bytes = Histogram(
            f"{NS}_request_body_bytes",
            "Sizes of the request bodies read",
            ["source"],
            buckets=BODY_BUCKETS,
            registry=r,
        )
        self.publish_failures = Counter(
            f"{NS}_publish_failures_total",
            "Requests whose publishes failed, by outcome (unavailable: 503, full: 429)",
            ["outcome"],
            registry=r,
        )
        self.nats_connection_status, self.nats_disconnects, self.nats_reconnects = (
            nats_connection_metrics(NS, r)
        )
        self.in_flight = Gauge(
            f"{NS}_requests_in_flight", "Requests being read, validated or published", registry=r
        )

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
