"""The bench's transport baseline (``processor.bench.transport``) against a real nats-server.

Timing is not checked (benchmarks report it); what is checked is that every message published is
delivered, acked and matched to its own publish, for single records and EventLists alike.
"""

from __future__ import annotations

import math

import pytest

from processor.bench import transport
from processor.bench.corpus import generate
from processor.bench.e2e import PARTITIONS, Corpus
from processor.stream.server import NatsServer


def test_stream_of_the_partition_subjects() -> None:
    assert transport.stream_of("audit.k8s.p3") == "AUDIT_EVENTS"
    assert transport.stream_of("events.p0") == "EVENTS"
    with pytest.raises(ValueError, match="not a partition subject"):
        transport.stream_of("audit.k8s.activity")


@pytest.mark.parametrize("list_size", [1, 20])
def test_every_message_is_delivered_and_timed(
    fresh_nats_server: NatsServer, list_size: int
) -> None:
    corpus = Corpus(list(generate(400, seed=4)))
    messages = corpus.messages(list_size)
    assert {transport.stream_of(subject) for _, subject, _ in messages} == {
        "AUDIT_EVENTS",
        "EVENTS",
    }
    figures = transport.latency(fresh_nats_server.url, messages, 2000.0, PARTITIONS)
    assert figures["messages"] == len(messages)
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] and math.isfinite(figures["p99_ms"])
