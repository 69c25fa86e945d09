"""Create the Kafka transport's topics with their partition counts (idempotent).

The input topics get :attr:`KafkaSettings.partitions` partitions (the partition function's
modulus); the output and dead-letter topics the same, so a consumer of Activities can scale the
same way; the policy topic has one partition and is compacted (the last value per policy name).
A topic that exists already is left as it is: a different partition count is reported, never
changed (Kafka can only add partitions, which would move every key).
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.errors import ProcessorError
from processor.kafka.settings import KafkaSettings

__all__ = ["KafkaTopicError", "TopicState", "ensure_topics", "topic_specs"]


class KafkaTopicError(ProcessorError):
    """A topic could not be created or has the wrong partition count."""


@dataclass(frozen=True)
class TopicState:
    """One topic after :func:`ensure_topics`: its name, partitions and whether it was created."""

    name: str
    partitions: int
    created: bool


def topic_specs(settings: KafkaSettings) -> list[tuple[str, int, dict[str, str]]]:
    """``(name, partitions, config)`` of every topic of the transport."""
    n = settings.partitions
    return [
        (settings.audit_topic, n, {}),
        (settings.event_topic, n, {}),
        (settings.activity_topic, n, {}),
        (settings.dead_letter_topic, n, {}),
        (settings.policy_topic, 1, {"cleanup.policy": "compact"}),
    ]


async def ensure_topics(settings: KafkaSettings, timeout: float = 30.0) -> list[TopicState]:
    """Create the missing topics and check the partition counts of the existing ones.

    Raises:
        KafkaTopicError: the brokers are unreachable, a creation failed, or an existing input
            topic has a partition count other than ``settings.partitions`` (records would be
            routed to partitions the workers' partition function does not produce).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap, request_timeout_ms=int(timeout * 1000)
    )
    try:
        await admin.start()
    except KafkaError as exc:
        await admin.close()
        raise KafkaTopicError(f"cannot reach Kafka at {settings.brokers}: {exc}") from exc
    try:
        existing = await _partition_counts(admin)
        states: list[TopicState] = []
        for name, partitions, config in topic_specs(settings):
            if name in existing:
                states.append(TopicState(name, existing[name], created=False))
                continue
            topic = NewTopic(name, partitions, 1, topic_configs=config)
            try:
                await admin.create_topics([topic])
            except TopicAlreadyExistsError:  # another worker or migrate raced us
                pass
            except KafkaError as exc:
                raise KafkaTopicError(f"cannot create topic {name}: {exc}") from exc
            states.append(TopicState(name, partitions, created=True))
        counts = await _partition_counts(admin)
        for name in settings.input_topics:
            if counts.get(name, settings.partitions) != settings.partitions:
                raise KafkaTopicError(
                    f"topic {name} has {counts[name]} partitions, the workers route by "
                    f"{settings.partitions}: use --partition-count {counts[name]} or a new topic"
                )
        return states
    finally:
        await admin.close()


async def _partition_counts(admin: object) -> dict[str, int]:
    meta = await admin.describe_topics()  # type: ignore[attr-defined]
    counts: dict[str, int] = {}
    for topic in meta:
        if topic.get("error_code", 0) == 0 and topic.get("partitions"):
            counts[topic["topic"]] = len(topic["partitions"])
    return counts
