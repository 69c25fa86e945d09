"""Stream and consumer provisioning: upstream settings when created, bound as-is otherwise."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
import pytest
from nats.js import api

from processor.stream.server import NatsServer
from processor.stream.topology import STREAMS, TopologyError, ensure_consumer, ensure_streams
from tests.integration.nats_server import unique

pytestmark = pytest.mark.integration


async def _with_js(url: str, body: Any) -> Any:
    nc = await nats.connect(url)
    try:
        return await body(nc.jetstream())
    finally:
        await nc.drain()


def test_ensure_streams_creates_upstream_settings(fresh_nats_server: NatsServer):
    async def body(js: Any) -> None:
        assert await ensure_streams(js) == dict.fromkeys(STREAMS, True)
        assert await ensure_streams(js) == dict.fromkeys(STREAMS, False)
        audit = (await js.stream_info("AUDIT_EVENTS")).config
        assert audit.subjects == ["audit.k8s.>"]
        assert audit.retention == api.RetentionPolicy.LIMITS
        assert audit.storage == api.StorageType.FILE
        assert audit.discard == api.DiscardPolicy.OLD
        assert (audit.max_age, audit.duplicate_window) == (168 * 3600, 600)
        assert (audit.max_msg_size, audit.max_bytes, audit.max_consumers) == (
            10 << 20,
            1 << 30,
            -1,  # no cap: one consumer per partition for each worker and reconciler
        )
        events = (await js.stream_info("EVENTS")).config
        assert (events.subjects, events.max_age, events.duplicate_window) == (
            ["events.>"],
            3600,
            60,
        )
        dlq = (await js.stream_info("ACTIVITY_DEAD_LETTER")).config
        assert dlq.retention == api.RetentionPolicy.WORK_QUEUE
        assert (dlq.subjects, dlq.max_age) == (["activity.dlq.>"], 720 * 3600)
        activities = (await js.stream_info("ACTIVITIES")).config
        assert (activities.subjects, activities.duplicate_window) == (["activities.>"], 300)

    asyncio.run(_with_js(fresh_nats_server.url, body))


def test_ensure_streams_binds_to_existing_without_altering(
    fresh_nats_server: NatsServer, caplog: pytest.LogCaptureFixture
):
    async def body(js: Any) -> None:
        await js.add_stream(name="EVENTS", subjects=["events.>", "k8s.events.>"], max_age=60)
        with caplog.at_level(logging.WARNING, logger="processor.stream.topology"):
            created = await ensure_streams(js)
        assert created["EVENTS"] is False and created["AUDIT_EVENTS"] is True
        config = (await js.stream_info("EVENTS")).config
        assert sorted(config.subjects) == ["events.>", "k8s.events.>"]
        assert config.max_age == 60
        assert "stream EVENTS exists with subjects" in caplog.text

    asyncio.run(_with_js(fresh_nats_server.url, body))


def test_ensure_streams_without_provisioning_fails_on_missing(fresh_nats_server: NatsServer):
    async def body(js: Any) -> None:
        with pytest.raises(TopologyError, match=r"AUDIT_EVENTS .* does not exist"):
            await ensure_streams(js, provision=False)
        await ensure_streams(js)
        assert await ensure_streams(js, provision=False) == dict.fromkeys(STREAMS, False)

    asyncio.run(_with_js(fresh_nats_server.url, body))


def test_ensure_consumer_creates_then_binds(nats_url: str, caplog: pytest.LogCaptureFixture):
    stream, durable = unique("TOPO"), unique("topo-c")
    subjects = [f"{stream}.a", f"{stream}.b"]

    async def body(js: Any) -> None:
        await js.add_stream(name=stream, subjects=[f"{stream}.>"])
        kwargs: dict[str, Any] = {"max_ack_pending": 7, "ack_wait": 3.0, "max_deliver": 5}
        info = await ensure_consumer(js, stream, durable, subjects, **kwargs)
        config = info.config
        assert config.durable_name == durable
        assert sorted(config.filter_subjects) == subjects
        assert config.ack_policy == api.AckPolicy.EXPLICIT
        assert config.deliver_policy == api.DeliverPolicy.ALL
        assert config.deliver_subject is None  # pull
        assert (config.max_ack_pending, config.ack_wait, config.max_deliver) == (7, 3.0, 5)
        # idempotent; other settings do not alter an existing consumer
        again = await ensure_consumer(js, stream, durable, subjects, **kwargs)
        assert again.config == config
        with caplog.at_level(logging.WARNING, logger="processor.stream.topology"):
            other = await ensure_consumer(
                js, stream, durable, [f"{stream}.c"], max_ack_pending=1, ack_wait=1, max_deliver=1
            )
        assert other.config == config
        assert "exists with filter" in caplog.text
        single = await ensure_consumer(js, stream, unique("one"), [f"{stream}.a"], **kwargs)
        assert single.config.filter_subject == f"{stream}.a"

    asyncio.run(_with_js(nats_url, body))


def test_ensure_consumer_errors(nats_url: str):
    async def body(js: Any) -> None:
        kwargs: dict[str, Any] = {"max_ack_pending": 1, "ack_wait": 1.0, "max_deliver": 1}
        with pytest.raises(ValueError, match="invalid durable"):
            await ensure_consumer(js, "X", "a.b", ["x"], **kwargs)
        with pytest.raises(ValueError, match="filter subject"):
            await ensure_consumer(js, "X", "ab", [], **kwargs)
        with pytest.raises(TopologyError, match="cannot create consumer"):
            await ensure_consumer(js, unique("NOSTREAM"), "ab", ["x"], **kwargs)

    asyncio.run(_with_js(nats_url, body))
