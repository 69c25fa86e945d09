"""The ingest server: an aiohttp application in front of JetStream (``docs/ingest.md``).

Routes of the webhook listener (``--listen-addr``, TLS when configured):

- ``POST /audit`` and ``POST /``: audit EventLists (kube-apiserver's webhook) or one audit Event;
- ``POST /events``: a Kubernetes Event or a list of them;
- ``GET /healthz``, ``/readyz`` (also ``/<probe>/<check>``) and ``/metrics``, without
  authentication; the same three on the optional plain-HTTP ``--health-addr``.

A request is answered in this order: 401 (not authenticated, nothing read), 413 (body over
``--max-body-bytes``), 400 (not what the endpoint takes, nothing published), then the publishes:
200 with a summary once JetStream acknowledged every message holding the request's records (and
its dead letters), 429 when a stream is full, 503 when NATS or a stream is unavailable -- both
with ``Retry-After``; a retried request publishes the same message ids, so nothing is stored
twice within the duplicate windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import nats
import orjson
from aiohttp import web

import processor
from processor.httpserve import Listeners, peercert, wait_for_signal
from processor.ingest.auth import Authenticator, server_ssl_context, warnings
from processor.ingest.batching import (
    Linger,
    Message,
    dead_letter_messages,
    partition_messages,
    shared_messages,
)
from processor.ingest.body import LIST_OVERHEAD, BodyError, Parsed, Source, parse_body
from processor.ingest.metrics import IngestMetrics
from processor.ingest.publish import (
    Limits,
    NatsPublisher,
    Publisher,
    PublishFailed,
    read_limits,
)
from processor.ingest.settings import IngestSettings
from processor.stream.connection import connect_options
from processor.stream.topology import STREAMS, ensure_streams

log = logging.getLogger(__name__)

__all__ = ["IngestServer"]

#: The streams the ingest publishes to (``/readyz`` fails while one is missing).
NEEDED = ("AUDIT_EVENTS", "EVENTS", "ACTIVITY_DEAD_LETTER")
STREAM_CHECK_INTERVAL = 10.0
#: Rejected items listed in a summary (the count is always complete).
MAX_LISTED = 100

Check = Callable[[], str]


def _json(payload: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload) + b"\n",
        status=status,
        headers=headers,
        content_type="application/json",
    )


class IngestServer:
    """Receives audit EventLists and Events over HTTP(S) and publishes them to the partitions.

    Args:
        settings: the validated settings.
        metrics: the metrics registry (a fresh one by default).
    """

    def __init__(self, settings: IngestSettings, metrics: IngestMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or IngestMetrics()
        self.auth = Authenticator(settings.token_file, bool(settings.client_ca_file))
        self.ssl = server_ssl_context(settings)
        self.nc: Any = None
        self.limits: Limits | None = None
        #: source -> the largest message: --batch-bytes bounded by the stream's max_msg_size
        self.batch_bytes: dict[Source, int] = {}
        self.publisher: Publisher | None = None
        #: source -> its linger (with --linger-ms > 0)
        self.lingers: dict[Source, Linger] = {}
        self.started = False
        self._streams_error = "not checked yet"
        self._listeners = Listeners()
        self._tasks: list[asyncio.Task[None]] = []
        self._recheck: asyncio.Task[None] | None = None
        #: one thread, so requests are parsed (and published) in the order they were read
        self._parser = ThreadPoolExecutor(1, thread_name_prefix="ingest-parse")
        self.port = 0
        self.health_port = 0

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect to NATS, check (or create) the streams, read their limits and listen (with
        ``--kafka-brokers``: create the topics and start a Kafka producer instead)."""
        s = self.settings
        for text in warnings(s):
            log.warning("activity ingest: %s", text)
        if s.kafka_brokers:
            await self._start_kafka()
        else:
            await self._start_nats()
        assert self.publisher is not None and self.limits is not None
        self.batch_bytes = {
            "audit": min(s.batch_bytes, self.limits.audit),
            "event": min(s.batch_bytes, self.limits.event),
        }
        if s.linger_ms > 0:
            self.lingers = {
                source: Linger(self.publisher.send, source, s.batch_items, size, s.linger_ms / 1000)
                for source, size in self.batch_bytes.items()
            }
        self.port = await self._listeners.listen(self._webhook_app(), s.listen_addr, self.ssl)
        if s.health_addr:
            self.health_port = await self._listeners.listen(self._health_app(), s.health_addr, None)
        self.started = True
        log.info(
            "activity-ingest %s on %s://%s (port %d) to %s, %d partitions, batches of %d "
            "records / %d bytes (Events: %d bytes), linger %g ms, authentication: %s",
            processor.__version__,
            "https" if self.ssl else "http",
            s.listen_addr,
            self.port,
            f"Kafka {s.kafka_brokers}" if s.kafka_brokers else f"NATS {s.nats_url}",
            s.partition_count,
            s.batch_items,
            self.batch_bytes["audit"],
            self.batch_bytes["event"],
            s.linger_ms,
            self._auth_text(),
        )

    async def _start_nats(self) -> None:
        s, m = self.settings, self.metrics
        options = connect_options(
            s.nats_url,
            "activity-ingest",
            m.nats_connection_status,
            disconnects=m.nats_disconnects,
            reconnects=m.nats_reconnects,
        )
        self.nc = await nats.connect(**options)
        js = self.nc.jetstream()
        await ensure_streams(js, provision=s.provision)
        self.limits = await read_limits(js, self.nc.max_payload)
        self.publisher = NatsPublisher(self.nc, m, s.publish_timeout)
        await self._check_streams()
        self._tasks.append(asyncio.ensure_future(self._watch_streams()))

    async def _start_kafka(self) -> None:
        from processor.ingest.kafka import KafkaPublisher

        s = self.settings
        publisher = KafkaPublisher(s.kafka(), self.metrics, s.publish_timeout)
        self.publisher = publisher
        await publisher.start(s.provision)
        self.limits = publisher.limits

    async def stop(self) -> None:
        """Stop listening (requests in flight finish), send what lingers, drain NATS."""
        self.started = False
        await self._listeners.close()
        if self._recheck is not None:
            self._tasks.append(self._recheck)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for linger in self.lingers.values():
            await linger.close()
        if self.publisher is not None:
            await self.publisher.close()
        self._parser.shutdown(wait=False)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT."""
        await self.start()
        # What start-up made lives as long as the process: out of the collector's way.
        gc.collect()
        gc.freeze()
        try:
            await wait_for_signal()
            log.info("activity ingest: stopping")
        finally:
            await self.stop()

    def _auth_text(self) -> str:
        ways = []
        if self.settings.token_file:
            ways.append(f"bearer tokens ({self.settings.token_file})")
        if self.settings.client_ca_file:
            ways.append(f"client certificates ({self.settings.client_ca_file})")
        return " or ".join(ways) or "NONE"

    # -- applications ---------------------------------------------------------------------------
    def _webhook_app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        app.router.add_post("/audit", self._audit)
        app.router.add_post("/", self._audit)
        app.router.add_post("/events", self._events)
        self._add_health_routes(app)
        return app

    def _health_app(self) -> web.Application:
        app = web.Application()
        self._add_health_routes(app)
        return app

    def _add_health_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/healthz/{check}", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/readyz/{check}", self._readyz)
        app.router.add_get("/metrics", self._metrics)

    # -- health ---------------------------------------------------------------------------------
    def health_checks(self) -> dict[str, Check]:
        """Liveness: the event loop answers. A NATS outage is not cured by a restart (nats-py
        reconnects by itself), so it fails readiness only."""
        return {"ping": lambda: ""}

    def ready_checks(self) -> dict[str, Check]:
        """Readiness: NATS connected, started, and every stream the ingest publishes to exists;
        with Kafka: started, and the last publish did not fail."""
        started: Check = lambda: "" if self.started else "starting or stopping"  # noqa: E731
        if self.settings.kafka_brokers:
            return {**self.health_checks(), "kafka": self._kafka_check, "started": started}
        return {
            **self.health_checks(),
            "nats": self._nats_check,
            "started": started,
            "streams": lambda: self._streams_error,
        }

    def _kafka_check(self) -> str:
        return str(getattr(self.publisher, "error", "not started"))

    def _nats_check(self) -> str:
        return "" if self.nc is not None and self.nc.is_connected else "not connected to NATS"

    async def _healthz(self, request: web.Request) -> web.Response:
        return _probe(self.health_checks(), request.match_info.get("check"))

    async def _readyz(self, request: web.Request) -> web.Response:
        return _probe(self.ready_checks(), request.match_info.get("check"))

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    async def _check_streams(self) -> None:
        if self.nc is None or not self.nc.is_connected:
            return  # the nats check says so; keep the last answer about the streams
        js = self.nc.jetstream()
        missing = []
        for name in NEEDED:
            try:
                await js.stream_info(name)
            except Exception as exc:
                missing.append(
                    f"{name} ({', '.join(STREAMS[name].subjects)}): {exc or type(exc).__name__}"
                )
        self._streams_error = "streams unavailable: " + "; ".join(missing) if missing else ""

    def _recheck_streams(self) -> None:
        if self._recheck is None or self._recheck.done():
            self._recheck = asyncio.create_task(self._check_streams())

    async def _watch_streams(self) -> None:
        while True:
            await asyncio.sleep(STREAM_CHECK_INTERVAL)
            with contextlib.suppress(Exception):
                await self._check_streams()

    # -- ingestion ------------------------------------------------------------------------------
    async def _audit(self, request: web.Request) -> web.Response:
        return await self._ingest(request, "audit")

    async def _events(self, request: web.Request) -> web.Response:
        return await self._ingest(request, "event")

    async def _ingest(self, request: web.Request, source: Source) -> web.Response:
        m = self.metrics
        m.in_flight.inc()
        try:
            response = await self._handle(request, source)
        finally:
            m.in_flight.dec()
        m.requests.labels(source, str(response.status)).inc()
        return response

    async def _handle(self, request: web.Request, source: Source) -> web.Response:
        m = self.metrics
        how = self.auth.authenticate(request.headers.get("Authorization"), peercert(request))
        if how is None:
            m.rejected.labels(source, "unauthenticated").inc()
            headers = {"WWW-Authenticate": 'Bearer realm="activity-ingest"'}
            return _json({"error": "unauthenticated", "code": 401}, 401, headers)
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return self._too_large(source, request.content_length)
        try:
            body = await _read_body(request)
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(source, None)
        m.body_bytes.labels(source).observe(len(body))
        try:
            # on the parse thread: the C pass and the hashing release the GIL meanwhile
            loop = asyncio.get_running_loop()
            work = await loop.run_in_executor(self._parser, self._prepare, source, body)
        except BodyError as exc:
            m.rejected.labels(source, exc.reason).inc()
            return _json({"error": str(exc), "code": exc.status}, exc.status)
        parsed = work.parsed
        for item in parsed.rejected:
            m.rejected.labels(source, item.reason).inc()
        try:
            messages = await self._publish(work)
        except PublishFailed as exc:
            m.publish_failures.labels(exc.outcome).inc()
            log.debug("%s request not acknowledged: %s", source, exc)
            if "no responders" in str(exc):  # a stream is gone: /readyz should say so now
                self._recheck_streams()
            headers = {"Retry-After": str(self.settings.retry_after)}
            return _json({"error": str(exc), "code": exc.status}, exc.status, headers)
        return _json(_summary(parsed, messages), 200)

    def _too_large(self, source: Source, size: int | None) -> web.Response:
        self.metrics.rejected.labels(source, "too_large").inc()
        what = f"body of {size} bytes" if size is not None else "body"
        text = f"{what} exceeds --max-body-bytes ({self.settings.max_body_bytes})"
        return _json({"error": text, "code": 413}, 413)

    def _record_limit(self, source: Source) -> int:
        assert self.limits is not None
        if source == "audit":
            return self.limits.audit - LIST_OVERHEAD
        return self.limits.event

    def _prepare(self, source: Source, body: bytes) -> _Work:
        """A request's records and messages (on the parse thread: no event loop, no metrics).

        Raises:
            BodyError: the body is refused whole.
        """
        assert self.limits is not None
        s = self.settings
        parsed = parse_body(source, body, s.partition_count, self._record_limit(source))
        other = dead_letter_messages(parsed, body, self.limits.dead_letter)
        if s.also_publish_shared:
            other += shared_messages(parsed)
        if source in self.lingers:
            return _Work(parsed, None, other)
        messages = partition_messages(parsed, s.batch_items, self.batch_bytes[source])
        return _Work(parsed, messages, other)

    async def _publish(self, work: _Work) -> int:
        """Publish a request's messages; returns how many partition messages hold its records."""
        assert self.publisher is not None
        if work.messages is None:
            linger = self.lingers[work.parsed.source]
            # shielded: a message's future is shared with other requests
            waits = [asyncio.shield(f) for f in linger.add(work.parsed.records)]
            results = await asyncio.gather(
                *waits, self.publisher.send(work.other), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
            return len(waits)
        await self.publisher.send(work.messages + work.other)
        return len(work.messages)


@dataclass(frozen=True, slots=True)
class _Work:
    """What a request publishes: its partition messages (None when they linger) and the rest
    (dead letters, shared copies)."""

    parsed: Parsed
    messages: list[Message] | None
    other: list[Message]


async def _read_body(request: web.Request) -> bytes:
    """The request body. With a ``Content-Length`` (checked against the limit already) and no
    ``Content-Encoding`` the stream's chunks are joined once (``readexactly``), not gathered
    into a growing buffer and copied again as ``request.read()`` does."""
    size = request.content_length
    if size is None or request.headers.get("Content-Encoding", "identity") != "identity":
        return await request.read()
    try:
        return await request.content.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise web.HTTPBadRequest(text="request body shorter than its Content-Length") from exc


def _summary(parsed: Parsed, messages: int) -> dict[str, Any]:
    counts = Counter(record.partition for record in parsed.records)
    rejected = [
        {
            "item": r.index,
            "reason": r.reason,
            "message": r.message,
            "deadLettered": r.payload is not None,
        }
        for r in parsed.rejected[:MAX_LISTED]
    ]
    return {
        "kind": "IngestResult",
        "source": parsed.source,
        "accepted": len(parsed.records),
        "partitions": {str(p): counts[p] for p in sorted(counts)},
        "messages": messages,
        "rejectedCount": len(parsed.rejected),
        "rejected": rejected,
    }


def _probe(checks: dict[str, Check], name: str | None) -> web.Response:
    """controller-runtime's answer: 200 ``ok``, or 500 with one ``[-]name failed`` line each."""
    if name is not None:
        if name not in checks:
            return web.Response(status=404, text=f"no check {name!r}\n")
        checks = {name: checks[name]}
    lines, failed = [], False
    for check_name, check in checks.items():
        try:
            reason = check()
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
        failed |= bool(reason)
        lines.append(f"[-]{check_name} failed: {reason}" if reason else f"[+]{check_name} ok")
    if failed:
        return web.Response(status=500, text="\n".join(lines) + "\nhealthz check failed\n")
    return web.Response(text="ok\n")
