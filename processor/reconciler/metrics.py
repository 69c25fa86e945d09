"""Prometheus metrics of the reconciler, on a private registry (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from processor.reconciler.conditions import FOLLOWED, KINDS

NS = "activity_reconciler"


class ReconcilerMetrics:
    """The reconciler's counters and gauges (one registry per instance)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.messages = Counter(
            f"{NS}_messages_total", "Input messages handled", ["stream"], registry=r
        )
        self.observations = Counter(
            f"{NS}_observations_total",
            "Inventory writes observed, by outcome (applied, stale, deleted, foreign)",
            ["result"],
            registry=r,
        )
        self.transitions = Counter(
            f"{NS}_transitions_total",
            "Condition transitions derived",
            ["kind", "condition", "to"],
            registry=r,
        )
        self.published = Counter(
            f"{NS}_events_published_total", "Derived Events published", ["kind"], registry=r
        )
        self.suppressed = Counter(
            f"{NS}_events_suppressed_total",
            "Derived Events dropped because a controller emitted the same transition",
            ["kind"],
            registry=r,
        )
        self.controller_events = Counter(
            f"{NS}_controller_events_total",
            "Inventory Events emitted by controllers (recognised on EVENTS)",
            ["kind"],
            registry=r,
        )
        self.errors = Counter(
            f"{NS}_errors_total",
            "Failures by stage (decode, state, publish); retriable ones are retried",
            ["stage"],
            registry=r,
        )
        self.retries = Counter(
            f"{NS}_retries_total", "Batches or publishes retried", ["stage"], registry=r
        )
        self.pending = Gauge(
            f"{NS}_pending_events", "Derived Events waiting for their grace period", registry=r
        )
        self.nats_connection_status = Gauge(
            f"{NS}_nats_connection_status", "1 when connected to NATS", registry=r
        )
        # Every label value is known up front: the series exist from the start at 0, so rate()
        # and alerts see the first increment and the dashboard shows 0, not "no data".
        for stream in ("AUDIT_EVENTS", "EVENTS"):
            self.messages.labels(stream)
        for result in ("applied", "stale", "deleted", "foreign"):
            self.observations.labels(result)
        for stage in ("decode", "state", "publish"):
            self.errors.labels(stage)
        for stage in ("batch", "publish"):
            self.retries.labels(stage)
        for kind in KINDS.values():
            for counter in (self.published, self.suppressed, self.controller_events):
                counter.labels(kind)
            for condition in FOLLOWED:
                for to in ("ready", "not_ready"):
                    self.transitions.labels(kind, condition, to)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
