"""``activity watch``: live activities from the ACTIVITIES stream (NATS JetStream,
docs/design.md#storage-query-6).

An *ordered* push consumer (ephemeral, no acks, flow control and heartbeats handled by nats-py)
reads the stream from a sequence (``--since SEQ``, inclusive, like upstream's resourceVersion) or
from new messages. Tenant flags narrow the subject (``activities.<Type>.<name>.>``); the CEL filter
and ``--actor`` are evaluated client-side on each activity with the same translator and meaning
as SQL queries (:mod:`processor.query.evaluate`). Each activity carries its stream sequence as
``metadata.resourceVersion``, so a watch can be resumed from the last one seen + 1.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
import orjson
from nats.js import api

from processor.activity import normalize_tenant_type
from processor.query.errors import QueryError
from processor.query.evaluate import matches
from processor.query.filter import Expr, compile_filter
from processor.query.tables import ACTIVITIES
from processor.subjects import sanitize_token

log = logging.getLogger(__name__)

STREAM = "ACTIVITIES"
PREFIX = "activities"


@dataclass(frozen=True)
class WatchSpec:
    """What to watch: filter, scope and start position (``since`` 0 = only new activities)."""

    filter: str = ""
    since: int = 0
    tenant_type: str = ""
    tenant_name: str = ""
    actor: str = ""
    stream: str = STREAM
    prefix: str = PREFIX

    def subject(self) -> str:
        """The subject filter: ``activities.>`` or narrowed to one tenant."""
        if not self.tenant_type:
            if self.tenant_name:
                raise QueryError("--tenant-name needs --tenant-type")
            return f"{self.prefix}.>"
        tenant_type = sanitize_token(normalize_tenant_type(self.tenant_type), "platform")
        name = sanitize_token(self.tenant_name, "_")
        return f"{self.prefix}.{tenant_type}.{name}.>"

    def compile(self) -> Expr | None:
        """The client-side filter tree (``QueryError`` if invalid)."""
        if self.since < 0:
            raise QueryError("--since must be a stream sequence (>= 1)")
        return compile_filter(self.filter, ACTIVITIES)


@dataclass(frozen=True)
class Watched:
    """One activity and its stream sequence."""

    sequence: int
    subject: str
    activity: dict[str, Any]


async def watch(nats_url: str, spec: WatchSpec, limit: int = 0) -> AsyncIterator[Watched]:
    """Yield matching activities as they arrive (``limit`` > 0: stop after that many).

    Raises:
        QueryError: invalid filter or flags.
        nats.errors.Error: the connection failed.
    """
    expr = spec.compile()
    subject = spec.subject()
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        config = None
        policy = api.DeliverPolicy.NEW
        if spec.since:
            policy = api.DeliverPolicy.BY_START_SEQUENCE
            config = api.ConsumerConfig(opt_start_seq=spec.since)
        sub = await js.subscribe(
            subject, stream=spec.stream, ordered_consumer=True, deliver_policy=policy, config=config
        )
        log.info("watching %s on %s from %s", subject, spec.stream, spec.since or "new")
        count = 0
        try:
            async for msg in sub.messages:
                item = _decode(msg)
                if item is None or not _wanted(item.activity, expr, spec.actor):
                    continue
                yield item
                count += 1
                if limit and count >= limit:
                    return
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


async def _quiet(exc: Exception) -> None:
    log.debug("NATS: %s", exc)


async def _warn(exc: Exception) -> None:
    log.warning("NATS: %s", exc)


async def connect(nats_url: str) -> Any:
    """Connect once without retrying (a wrong URL fails fast), then with endless reconnects.

    Raises:
        OSError, TimeoutError, nats.errors.Error: the server is not reachable.
    """
    servers = [u.strip() for u in nats_url.split(",") if u.strip()]
    probe = await nats.connect(
        servers,
        connect_timeout=5,
        allow_reconnect=False,
        max_reconnect_attempts=1,  # nats-py: 0 would retry the first connect forever
        reconnect_time_wait=0.2,
        error_cb=_quiet,
    )
    await probe.close()
    return await nats.connect(servers, connect_timeout=5, max_reconnect_attempts=-1, error_cb=_warn)


def _decode(msg: Any) -> Watched | None:
    try:
        activity = orjson.loads(msg.data)
    except orjson.JSONDecodeError:
        log.debug("skipping undecodable message on %s", msg.subject)
        return None
    if not isinstance(activity, dict):
        return None
    sequence = int(msg.metadata.sequence.stream)
    meta = activity.setdefault("metadata", {})
    if isinstance(meta, dict):
        meta["resourceVersion"] = str(sequence)
    return Watched(sequence, msg.subject, activity)


def _wanted(activity: dict[str, Any], expr: Expr | None, actor: str) -> bool:
    if actor:
        spec = activity.get("spec")
        who = spec.get("actor") if isinstance(spec, dict) else None
        if not isinstance(who, dict) or who.get("name") != actor:
            return False
    return matches(expr, activity)
