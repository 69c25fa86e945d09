"""Partition specs and subjects (docs/design.md#d13)."""

from __future__ import annotations

import pytest

from processor.stream.partitions import (
    audit_partition_subject,
    event_partition_subject,
    is_partition_subject,
    parse_partitions,
)
from processor.stream.topology import partition_consumer_name


@pytest.mark.parametrize(
    ("spec", "count", "expected"),
    [
        ("all", 4, (0, 1, 2, 3)),
        (" ALL ", 2, (0, 1)),
        ("0-3", 8, (0, 1, 2, 3)),
        ("0,2,5-7", 8, (0, 2, 5, 6, 7)),
        ("3", 4, (3,)),
        ("2, 0 ,1", 4, (0, 1, 2)),
        ("1-2,2-3", 4, (1, 2, 3)),
        ("0 - 1", 2, (0, 1)),
        ("all", 1, (0,)),
    ],
)
def test_parse_partitions(spec: str, count: int, expected: tuple[int, ...]):
    assert parse_partitions(spec, count) == expected


@pytest.mark.parametrize(
    ("spec", "count", "message"),
    [
        ("", 4, "empty"),
        ("4", 4, "out of range"),
        ("0-9", 4, "out of range"),
        ("3-1", 4, "reversed"),
        ("a", 4, "not a number"),
        ("1,,2", 4, "not a number"),
        ("-1", 4, "not a number"),
        ("1.5", 4, "not a number"),
        ("٣", 4, "not a number"),  # a non-ASCII digit
        ("all", 0, "count must be >= 1"),
    ],
)
def test_parse_partitions_errors(spec: str, count: int, message: str):
    with pytest.raises(ValueError, match=message):
        parse_partitions(spec, count)


def test_subjects():
    assert audit_partition_subject(3) == "audit.k8s.p3"
    assert event_partition_subject(0) == "events.p0"
    assert is_partition_subject(audit_partition_subject(12))
    assert is_partition_subject(event_partition_subject(7))


@pytest.mark.parametrize(
    "subject",
    [
        "audit.k8s.activity",
        "audit.k8s.retry",
        "audit.k8s.p",
        "audit.k8s.px",
        "audit.k8s.p1.x",
        "events.default",
        "events.p",
        "events.p1x",
        "xevents.p1",
        "activities.p1",
    ],
)
def test_not_partition_subjects(subject: str):
    assert not is_partition_subject(subject)


def test_partition_consumer_name():
    assert partition_consumer_name("activity-processor", 3) == "activity-processor-p3"
    with pytest.raises(ValueError, match="invalid durable consumer name"):
        partition_consumer_name("activity-processor@activity.miloapis.com", 0)
