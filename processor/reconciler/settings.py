"""Settings of ``activity reconcile``: one frozen, validated object (built by the command)."""

from __future__ import annotations

from dataclasses import dataclass

from processor.reconciler.conditions import FOLLOWED


@dataclass(frozen=True)
class ReconcilerSettings:
    """Everything the reconciler needs.

    Attributes:
        nats_url: NATS server URL(s), comma separated.
        namespace: namespace of the derived Events (``INVENTORY_ACTIVITY_NAMESPACE`` upstream);
            they are published on ``events.<namespace>``.
        partition_count: partitions of the audit subjects (as the workers).
        partitions: the partitions this reconciler owns (``all``, ``0-3``, ``0,2``).
        shared_consumer: also read the upstream subject ``audit.k8s.activity``.
        consumer_name: base name of the durable consumers (``-p<N>`` per partition, ``-events``).
        state_bucket: NATS KV bucket of per-object state.
        conditions: condition types followed.
        grace: seconds a derived Event waits for the controller's own Event before it is
            published (0 = publish at once).
        controller_window: seconds between a controller Event and the write it reports within
            which the two are taken for the same transition.
        instance: ``reportingInstance`` of derived Events (and the ``derived-by`` annotation).
        provision: create missing streams, consumers and the bucket.
        pull_batch, pull_max_bytes, pull_budget_bytes: pull requests, as for the worker.
        ack_wait, max_ack_pending: consumer settings (new consumers).
        health_addr: HOST:PORT of /healthz, /readyz and /metrics ('' = off).
        log_level: DEBUG, INFO, WARNING or ERROR.
    """

    nats_url: str = "nats://127.0.0.1:4222"
    namespace: str = "default"
    partition_count: int = 8
    partitions: str = "all"
    shared_consumer: bool = True
    consumer_name: str = "activity-reconciler"
    state_bucket: str = "activity-reconciler"
    conditions: tuple[str, ...] = FOLLOWED
    grace: float = 5.0
    controller_window: float = 300.0
    instance: str = "activity-reconciler"
    provision: bool = True
    pull_batch: int = 256
    pull_max_bytes: int = 4 * 1024 * 1024
    pull_budget_bytes: int = 48 * 1024 * 1024
    ack_wait: float = 30.0
    max_ack_pending: int = 50_000
    health_addr: str = "127.0.0.1:8082"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        problems = []
        if not self.namespace:
            problems.append("namespace must not be empty")
        if self.partition_count < 1:
            problems.append("partition_count must be at least 1")
        if self.grace < 0 or self.controller_window < 0:
            problems.append("grace and controller_window must not be negative")
        if min(self.pull_batch, self.pull_max_bytes, self.pull_budget_bytes) < 1:
            problems.append("pull_batch, pull_max_bytes and pull_budget_bytes must be positive")
        if self.max_ack_pending < 1 or self.ack_wait <= 0:
            problems.append("max_ack_pending and ack_wait must be positive")
        unknown = [c for c in self.conditions if c not in FOLLOWED]
        if unknown or not self.conditions:
            problems.append(f"conditions must be among {', '.join(FOLLOWED)}")
        if not self.state_bucket or not self.consumer_name:
            problems.append("state_bucket and consumer_name must not be empty")
        if problems:
            raise ValueError("invalid reconciler settings: " + "; ".join(problems))
