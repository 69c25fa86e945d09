"""The ``activity demo`` story: half an hour of a small platform team's cluster.

Alice (platform) creates the ``shop`` namespace and two Deployments, scales one, and fixes a
crash-looping worker; Bob (developer) edits a ConfigMap and a Secret and is refused a delete;
Carol (infrastructure) creates a Circuit before its Provider exists, so the inventory controller
reports it not ready until she registers the Provider. Around them runs what a real cluster
produces: kubelet leases and status writes, controller lists and watches, scheduler bindings,
routine Events. Most records become no activity with the bundled policies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processor.demo import scenes, scenes_ops
from processor.demo.records import AuditBuilder
from processor.demo.story import ScenarioRecord, Story

__all__ = ["ScenarioRecord", "scenario"]

#: How far back the story starts.
SPAN = timedelta(minutes=30)


def scenario(now: datetime | None = None, seed: int = 7) -> list[ScenarioRecord]:
    """The demo's records, oldest first, over the ~30 minutes before ``now``.

    Args:
        now: the end of the story (default: the current time, UTC).
        seed: seeds auditIDs, uids, latencies and name suffixes; the same ``now`` and seed give
            the same records.

    Returns:
        Audit events (``audit.k8s.io/v1`` Event, stage ResponseComplete) and Kubernetes Events
        (``events.k8s.io/v1``), sorted by time.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    story = Story(start=now.astimezone(UTC) - SPAN, b=AuditBuilder(seed))
    for scene in (*scenes.SCENES, *scenes_ops.SCENES):
        scene(story)
    return sorted(story.records, key=lambda r: r.time)
