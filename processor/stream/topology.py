"""JetStream streams and durable consumers, with the upstream names and settings.

Streams follow the upstream NACK CRs (``docs/design.md#pipeline-8-1``, ``#storage-query-2-1``): file
storage, 1 GiB each, discard old; ``ACTIVITY_DEAD_LETTER`` is a work queue that refuses new
messages when full (unlike upstream: dead letters have no other copy). The processor *creates*
what is missing (``activity demo``, tests, a fresh install) and otherwise *binds* to what exists as
it is: a stream or consumer configured by someone else (an operator, the NACK controller) is never
altered; a differing subject set is logged.

Consumers (docs/design.md#pipeline-8-2): pull, explicit ack, deliver all, instant replay;
``max_ack_pending``, ``ack_wait`` and ``max_deliver`` are the caller's (upstream: 1000, 30 s, 5 for
audit and -1 for events). Partition consumers are named ``<base>-p<N>`` (docs/design.md#d13).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nats.js import api
from nats.js.errors import APIError, NotFoundError

from processor.errors import ProcessorError

log = logging.getLogger(__name__)

__all__ = [
    "STREAMS",
    "OutputLimits",
    "StreamSpec",
    "TopologyError",
    "ensure_consumer",
    "ensure_streams",
    "output_limits",
    "partition_consumer_name",
]

GIB = 1 << 30
MIB = 1 << 20
HOUR = 3600.0
_BAD_NAME = re.compile(r"[.*>\s/\\]")


class TopologyError(ProcessorError):
    """A stream or consumer is missing (and may not be created) or cannot be created."""

    retriable = True


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """The settings of one upstream stream."""

    name: str
    subjects: tuple[str, ...]
    max_age: float
    duplicate_window: float
    max_msg_size: int
    max_consumers: int = -1
    max_bytes: int = GIB
    workqueue: bool = False
    #: refuse new messages when full instead of evicting the oldest (the stream is their only copy)
    discard_new: bool = False

    def config(self, replicas: int = 1) -> api.StreamConfig:
        """The nats-py ``StreamConfig`` that creates this stream."""
        return api.StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=api.RetentionPolicy.WORK_QUEUE
            if self.workqueue
            else api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.NEW if self.discard_new else api.DiscardPolicy.OLD,
            max_age=self.max_age,
            max_bytes=self.max_bytes,
            max_msg_size=self.max_msg_size,
            max_consumers=self.max_consumers,
            duplicate_window=self.duplicate_window,
            num_replicas=replicas,
        )


STREAMS: dict[str, StreamSpec] = {
    spec.name: spec
    for spec in (
        # upstream caps AUDIT_EVENTS at 10 consumers; partition consumers of workers and
        # reconcilers need one each, so streams this project creates have no cap
        StreamSpec("AUDIT_EVENTS", ("audit.k8s.>",), 168 * HOUR, 600.0, 10 * MIB),
        StreamSpec("EVENTS", ("events.>",), 1 * HOUR, 60.0, MIB, 100_000),
        StreamSpec("ACTIVITIES", ("activities.>",), 168 * HOUR, 300.0, MIB, 1000),
        # dead letters have no other copy: when the queue is full a publish fails (the worker
        # pauses, /readyz says why) rather than evicting the oldest (docs/reliability.md)
        StreamSpec(
            "ACTIVITY_DEAD_LETTER",
            ("activity.dlq.>",),
            720 * HOUR,
            300.0,
            MIB,
            10,
            workqueue=True,
            discard_new=True,
        ),
    )
}


async def ensure_streams(js: Any, *, provision: bool = True, replicas: int = 1) -> dict[str, bool]:
    """Create the missing upstream streams; bind to existing ones as they are.

    Args:
        js: a nats-py ``JetStreamContext``.
        provision: create missing streams; when False a missing stream is an error.
        replicas: replicas of created streams.

    Returns:
        For each stream of :data:`STREAMS`: True if it was created now, False if it existed.

    Raises:
        TopologyError: a stream is missing and ``provision`` is False, or creating it failed.
    """
    created: dict[str, bool] = {}
    for spec in STREAMS.values():
        created[spec.name] = await _ensure_stream(js, spec, provision, replicas)
    return created


async def _ensure_stream(js: Any, spec: StreamSpec, provision: bool, replicas: int) -> bool:
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        if not provision:
            raise TopologyError(
                f"stream {spec.name} ({', '.join(spec.subjects)}) does not exist and "
                "provisioning is off: create it (NACK Stream CR) or enable provisioning"
            ) from None
        try:
            await js.add_stream(spec.config(replicas))
        except APIError as exc:  # e.g. created concurrently with other settings
            try:
                info = await js.stream_info(spec.name)
            except NotFoundError:
                raise TopologyError(f"cannot create stream {spec.name}: {exc}") from exc
        else:
            log.info("created stream %s on %s", spec.name, ", ".join(spec.subjects))
            return True
    if spec.discard_new and info.config.discard != api.DiscardPolicy.NEW:
        log.warning(
            "stream %s discards its oldest messages when full: dead letters can be lost once it "
            "holds %s bytes; set its discard policy to new (docs/reliability.md)",
            spec.name,
            info.config.max_bytes,
        )
    subjects = tuple(info.config.subjects or ())
    if set(subjects) != set(spec.subjects):
        log.warning(
            "stream %s exists with subjects %s (expected %s); using it as configured",
            spec.name,
            list(subjects),
            list(spec.subjects),
        )
    return False


#: Bytes kept free in each output message for its headers (``Nats-Msg-Id``).
HEADER_RESERVE = 512


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """The largest message bodies the output streams take (headers reserved).

    Attributes:
        activity_bytes: the largest Activity ``ACTIVITIES`` stores.
        dead_letter_bytes: the largest dead letter ``ACTIVITY_DEAD_LETTER`` stores.
    """

    activity_bytes: int
    dead_letter_bytes: int


async def output_limits(js: Any, max_payload: int) -> OutputLimits:
    """Read the output streams' ``max_msg_size`` (bounded by the server's ``max_payload``).

    A stream that cannot be read (missing, no permission) is bounded by ``max_payload`` alone.
    """

    async def limit(name: str) -> int:
        size = -1
        try:
            size = (await js.stream_info(name)).config.max_msg_size or -1
        except Exception as exc:
            log.warning("cannot read %s's max message size, using the server's: %s", name, exc)
        cap = max_payload if size <= 0 else min(size, max_payload)
        return max(cap - HEADER_RESERVE, 1)

    return OutputLimits(await limit("ACTIVITIES"), await limit("ACTIVITY_DEAD_LETTER"))


def partition_consumer_name(base: str, n: int) -> str:
    """The durable consumer of partition ``n``: ``<base>-p<n>`` (``activity-processor-p3``).

    Raises:
        ValueError: the name is not a valid durable name.
    """
    name = f"{base}-p{n}"
    _check_name(name)
    return name


def _check_name(name: str) -> None:
    if not name or _BAD_NAME.search(name):
        raise ValueError(
            f"invalid durable consumer name {name!r}: it must be non-empty and contain no "
            "'.', '*', '>', '/', '\\' or whitespace"
        )


async def ensure_consumer(
    js: Any,
    stream: str,
    durable: str,
    filter_subjects: Sequence[str],
    *,
    max_ack_pending: int,
    ack_wait: float,
    max_deliver: int,
) -> api.ConsumerInfo:
    """Create a durable pull consumer if it is missing, otherwise bind to it as it is.

    Args:
        js: a nats-py ``JetStreamContext``.
        stream: the stream name.
        durable: the durable name.
        filter_subjects: its filter subjects (one or more).
        max_ack_pending: un-acked messages the server lets out.
        ack_wait: seconds before an un-acked message is redelivered.
        max_deliver: deliveries per message (-1: unlimited).

    Returns:
        The consumer's info.

    Raises:
        ValueError: invalid durable name or no filter subject.
        TopologyError: the consumer cannot be created.
    """
    _check_name(durable)
    if not filter_subjects:
        raise ValueError(f"consumer {durable}: at least one filter subject is needed")
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return await _create_consumer(
            js, stream, durable, filter_subjects, max_ack_pending, ack_wait, max_deliver
        )
    _warn_if_filter_differs(info, filter_subjects)
    return info


async def _create_consumer(
    js: Any,
    stream: str,
    durable: str,
    filter_subjects: Sequence[str],
    max_ack_pending: int,
    ack_wait: float,
    max_deliver: int,
) -> api.ConsumerInfo:
    subjects = list(filter_subjects)
    config = api.ConsumerConfig(
        durable_name=durable,
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        replay_policy=api.ReplayPolicy.INSTANT,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        max_ack_pending=max_ack_pending,
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
    )
    try:
        info = await js.add_consumer(stream, config)
    except APIError as exc:  # created concurrently by another worker, or a real error
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:
            raise TopologyError(f"cannot create consumer {stream}/{durable}: {exc}") from exc
        _warn_if_filter_differs(info, filter_subjects)
        return info
    log.info("created consumer %s/%s on %s", stream, durable, ", ".join(subjects))
    return info


def _warn_if_filter_differs(info: api.ConsumerInfo, wanted: Sequence[str]) -> None:
    config = info.config
    have = set(config.filter_subjects or ())
    if config.filter_subject:
        have.add(config.filter_subject)
    if have != set(wanted):
        log.warning(
            "consumer %s/%s exists with filter %s (expected %s); using it as configured",
            info.stream_name,
            config.durable_name or info.name,
            sorted(have) or "(none)",
            sorted(wanted),
        )
