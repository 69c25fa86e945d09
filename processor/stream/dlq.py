"""Dead-letter replay (``activity dlq retry``) and inspection (``activity dlq list``).

Replay follows the upstream retry controller (``docs/design.md#pipeline-8-6``): the original payload
is republished to ``audit.k8s.retry`` / ``events.retry`` (read by the workers' shared consumers)
with ``Nats-Msg-Id: dlq-retry-<type>-<policy>-<hash8>-<time>`` and ``Nats-Expected-Stream``, and the
dead letter is acked (ACTIVITY_DEAD_LETTER is a work queue, so an ack removes it) only after the
republish was acknowledged. A record that fails again is dead-lettered again by the worker.
Unlike upstream, a dead letter that cannot be parsed or does not match the filter is left in the
queue (never acked and dropped), so nothing is lost by a retry run. The payload is republished byte
for byte (its text in the dead letter, not a re-encoding); a pointer dead letter's payload
(``originalPayloadRef``, ``docs/reliability.md``) is read back from its input stream.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.js.errors import NotFoundError

from processor.deadletter import decode_dead_letter, original_payload_bytes, payload_from_ref

log = logging.getLogger(__name__)

DLQ_STREAM = "ACTIVITY_DEAD_LETTER"
DLQ_PREFIX = "activity.dlq"
RETRY_SUBJECTS = {
    "audit": ("audit.k8s.retry", "AUDIT_EVENTS"),
    "k8s-event": ("events.retry", "EVENTS"),
}


@dataclass
class RetryReport:
    """What a retry run did."""

    republished: int = 0
    skipped: int = 0
    unreadable: int = 0
    failed: int = 0
    by_subject: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"republished={self.republished} skipped={self.skipped} "
            f"unreadable={self.unreadable} failed={self.failed}"
        )


def filter_subject(event_type: str | None, api_group: str | None, kind: str | None) -> str:
    """The DLQ subject filter: ``activity.dlq.<type>.<group>.<kind>`` (``""`` group = core).

    Groups keep their dots in DLQ subjects, so without a group the kind cannot be told apart by
    position: the filter is then ``activity.dlq.<type>.>`` and the kind is checked on the record.
    """
    if api_group is None:
        return ".".join((DLQ_PREFIX, event_type or "*", ">"))
    return ".".join((DLQ_PREFIX, event_type or "*", api_group or "core", kind or "*"))


def retry_msg_id(event_type: str, policy: str, payload: bytes, now: datetime) -> str:
    """The upstream retry message id: ``dlq-retry-<type>-<policy>-<hash8>-<RFC3339Nano>``."""
    hash8 = hashlib.sha256(payload).hexdigest()[:8]
    return f"dlq-retry-{event_type}-{policy}-{hash8}-{now.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"


async def retry_dead_letters(
    js: Any,
    *,
    policy: str | None = None,
    event_type: str | None = None,
    api_group: str | None = None,
    kind: str | None = None,
    limit: int = 0,
    batch: int = 100,
) -> RetryReport:
    """Republish matching dead letters; returns the counts.

    Args:
        js: a JetStream context.
        policy: only records of this policy name.
        event_type, api_group, kind: narrow the DLQ subject.
        limit: stop after this many republished records (0 = all).
        batch: messages per fetch.
    """
    import nats.errors

    report = RetryReport()
    sub = await js.pull_subscribe(
        filter_subject(event_type, api_group, kind), durable=None, stream=DLQ_STREAM
    )
    try:
        while not limit or report.republished < limit:
            try:
                msgs = await sub.fetch(batch, timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):  # nothing (more) waiting
                break
            for msg in msgs:
                await _retry_one(js, msg, policy, kind, report)
    finally:
        await _delete(js, sub)
    return report


async def _delete(js: Any, sub: Any) -> None:
    """Remove the ephemeral consumer now: a work queue allows one consumer per subject filter."""
    try:
        name = (await sub.consumer_info()).name
        await sub.unsubscribe()
        await js.delete_consumer(DLQ_STREAM, name)
    except Exception as exc:
        log.debug("could not delete the retry consumer: %s", exc)


async def _retry_one(
    js: Any, msg: Any, policy: str | None, kind: str | None, report: RetryReport
) -> None:
    try:
        record = decode_dead_letter(msg.data)
        ref = record.get("originalPayloadRef")
        if isinstance(ref, dict):  # too large for the DLQ: the input stream holds it
            held = await js.get_msg(str(ref.get("stream")), int(ref.get("sequence", 0)))
            payload = payload_from_ref(ref, held.data or b"")
        else:
            payload = original_payload_bytes(record, msg.data)
        subject, stream = RETRY_SUBJECTS[record.get("type", "")]
    except (ValueError, KeyError, TypeError, NotFoundError) as exc:
        log.warning("dead letter on %s is unreadable, left in the queue: %s", msg.subject, exc)
        report.unreadable += 1
        return
    name = str(record.get("policyName", ""))
    resource = record.get("resource") or {}
    if (policy is not None and name != policy) or (kind and resource.get("kind") != kind):
        report.skipped += 1
        return
    msg_id = retry_msg_id(record["type"], name, payload, datetime.now(UTC))
    try:
        await js.publish(
            subject, payload, headers={"Nats-Msg-Id": msg_id, "Nats-Expected-Stream": stream}
        )
    except Exception as exc:
        log.warning("republish of a dead letter failed, left in the queue: %s", exc)
        report.failed += 1
        return
    await msg.ack()
    report.republished += 1
    report.by_subject[msg.subject] = report.by_subject.get(msg.subject, 0) + 1


async def dead_letter_counts(js: Any) -> dict[str, int]:
    """Messages waiting in the dead-letter queue, per subject."""
    info = await js.stream_info(DLQ_STREAM, subjects_filter=">")
    return dict(sorted((info.state.subjects or {}).items()))
