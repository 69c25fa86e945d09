"""Locust load run over NATS: audit records in, activities out, measured per partition.

``AuditPublisher`` users publish the standard benchmark corpus (``processor.bench.corpus``) to the
partition subjects ``audit.k8s.p<N>`` / ``events.p<N>``: single records and audit ``EventList``
messages of ``--list-size`` events, round-robin over ``--partitions``, paced so that all users
together send ``--rate`` records/s. Every publish is a Locust request of type ``nats`` named
``audit p<N>``, ``list p<N>`` or ``event p<N>`` (response time: until the PubAck; content size:
records in the message). A listener on ``activities.>`` reports each activity of a record this
process published as a request of type ``e2e`` named ``activity p<N>`` (response time: publish to
activity), and once more as ``activity all`` for the overall percentiles (so Locust's
``Aggregated`` row counts each activity twice; read the named rows). So Locust's CSV and HTML
reports carry throughput and latency per partition.

``IngestPoster`` users post instead to ``activity ingest`` (``--host``, its ``/audit``), as
kube-apiserver's batch-mode webhook does: audit ``EventList`` bodies of ``--http-list-sizes``
records (uniformly 100-400 by default; the apiserver's batches are up to 400) of every chosen
partition, each with a bearer token from ``--ingest-token-file``. A POST is a Locust request of
type ``POST`` named ``/audit`` (a success only on 200, which the ingest sends once JetStream
stored the records); its records then count as type ``ingest`` entries ``records p<N>``, one per
partition in the answer (response time: the POST's; content size: that partition's records), so
the per-partition columns read as for NATS. Their activities are timed from the start of the
POST.

``KafkaPublisher`` users (with ``--kafka-brokers``) publish the same messages to the Kafka
transport's topic partitions instead (``audit-events``, ``k8s-events``; :mod:`kafkabridge`):
requests of type ``kafka``, named as for NATS, and activities timed from the ``activities``
topic.

NATS runs on an asyncio loop in a native thread (:mod:`natsbridge`), Kafka likewise. Typical use is
``activity loadtest`` (which starts nats-server, the workers and, with ``--transport http``, the
ingest); by hand, naming the user class::

    locust -f loadtest/locustfile.py AuditPublisher --headless -u 4 -r 4 -t 60s \\
        --nats-url nats://127.0.0.1:4222 --partition-count 8 --rate 2000 --csv out/run
    locust -f loadtest/locustfile.py IngestPoster --headless -u 4 -r 4 -t 60s \\
        --host http://127.0.0.1:8443 --ingest-token-file tokens \\
        --nats-url nats://127.0.0.1:4222 --partition-count 8 --rate 20000 --csv out/run
    locust -f loadtest/locustfile.py KafkaPublisher --headless -u 4 -r 4 -t 60s \\
        --kafka-brokers 127.0.0.1:9092 --partition-count 8 --rate 2000 --csv out/run

Distributed mode: ``locust -f loadtest/locustfile.py --master ...`` plus ``--worker`` processes
(or ``--processes N``); the options are sent to the workers (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import gevent
import orjson
from corpusfeed import Feed, parse_partitions
from kafkabridge import KafkaBridge
from locust import FastHttpUser, User, constant_throughput, events, task
from locust.runners import MasterRunner
from natsbridge import Bridge

from processor.kafka.settings import COMPRESSIONS, DEFAULT_COMPRESSION

log = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def _options(parser: Any, **_kwargs: Any) -> None:
    group = parser.add_argument_group("activity processor load run")
    group.add_argument("--nats-url", default="nats://127.0.0.1:4222", help="NATS URL(s)")
    group.add_argument(
        "--kafka-brokers",
        default="",
        help="KafkaPublisher: Kafka bootstrap servers (publish to the topics, not NATS)",
    )
    group.add_argument(
        "--kafka-compression",
        choices=COMPRESSIONS,
        default=DEFAULT_COMPRESSION,
        help=f"KafkaPublisher: codec of the record batches (default: {DEFAULT_COMPRESSION})",
    )
    group.add_argument("--partition-count", type=int, default=8, help="worker partitions")
    group.add_argument("--partitions", default="all", help="partitions to publish to (0-3, 0,2)")
    group.add_argument("--rate", type=float, default=1000.0, help="records/s of all users")
    group.add_argument("--list-size", type=int, default=100, help="audit events per EventList")
    group.add_argument(
        "--list-share", type=float, default=0.5, help="share of messages that are EventLists"
    )
    group.add_argument("--corpus-size", type=int, default=2000, help="corpus records")
    group.add_argument("--corpus-seed", type=int, default=1, help="corpus seed")
    group.add_argument(
        "--http-list-sizes",
        default="100-400",
        help="IngestPoster: records per posted EventList, MIN-MAX or N (default: 100-400)",
    )
    group.add_argument(
        "--ingest-token-file", default="", help="IngestPoster: file whose first line is a token"
    )
    group.add_argument(
        "--drain-seconds",
        type=float,
        default=5.0,
        help="after the run, wait up to this long for the last activities",
    )


class _State:
    """Per-process state: the corpus feed, the NATS bridge and the result pump."""

    def __init__(self, options: Any) -> None:
        parts = parse_partitions(options.partitions, options.partition_count)
        self.options = options
        self.feed = Feed(
            parts,
            options.partition_count,
            corpus_size=options.corpus_size,
            seed=options.corpus_seed,
            list_size=options.list_size,
        )
        self.bridge: Bridge = (
            KafkaBridge(
                options.kafka_brokers,
                options.partition_count,
                compression=options.kafka_compression,
            )
            if options.kafka_brokers
            else Bridge(options.nats_url)
        )
        self.pump: gevent.Greenlet | None = None
        share = min(max(options.list_share, 0.0), 1.0)
        self.list_share = share
        self.records_per_message = share * options.list_size + (1 - share)
        self.http_sizes = list_sizes(options.http_list_sizes)
        token = read_token(options.ingest_token_file)
        self.http_headers = {"Content-Type": "application/json"}
        if token:
            self.http_headers["Authorization"] = f"Bearer {token}"


def list_sizes(spec: str) -> tuple[int, int]:
    """``100-400`` or ``250`` as (smallest, largest)."""
    low, _, high = spec.partition("-")
    sizes = (int(low), int(high or low))
    if not 1 <= sizes[0] <= sizes[1]:
        raise ValueError(f"--http-list-sizes {spec!r}: expected MIN-MAX with 1 <= MIN <= MAX")
    return sizes


def read_token(path: str) -> str:
    """The first line of ``path`` ('' without a path)."""
    if not path:
        return ""
    with open(path) as fh:
        return fh.readline().strip()


STATE: dict[str, _State] = {}


def _pump(environment: Any, bridge: Bridge) -> int:
    """Fire a Locust request event for every result the loop thread queued."""
    fire = environment.events.request.fire
    results = bridge.results
    fired = 0
    while results:
        kind, name, start, ms, length, error = results.popleft()
        names = (name, "activity all") if kind == "e2e" else (name,)
        for entry in names:
            fire(
                request_type=kind,
                name=entry,
                response_time=ms,
                response_length=length,
                exception=error,
                context={},
                start_time=start,
            )
        fired += 1
    return fired


def _pump_forever(environment: Any, bridge: Bridge) -> None:
    while True:
        if not _pump(environment, bridge):
            gevent.sleep(0.02)


@events.test_start.add_listener
def _start(environment: Any, **_kwargs: Any) -> None:
    if isinstance(environment.runner, MasterRunner) or "state" in STATE:
        return
    state = _State(environment.parsed_options)
    state.bridge.start(sleep=gevent.sleep)
    state.pump = gevent.spawn(_pump_forever, environment, state.bridge)
    STATE["state"] = state
    log.info(
        "publishing to %s, partitions %s of %d, %.0f records/s",
        state.options.kafka_brokers or state.options.nats_url,
        sorted(state.feed.sizes()),
        state.options.partition_count,
        state.options.rate,
    )


@events.test_stop.add_listener
def _stop(environment: Any, **_kwargs: Any) -> None:
    state = STATE.pop("state", None)
    if state is None:
        return
    bridge = state.bridge
    started = time.monotonic()
    limit = started + state.options.drain_seconds
    while time.monotonic() < limit:
        _pump(environment, bridge)
        quiet = time.monotonic() - max(bridge.last_activity, started)
        if bridge.in_flight == 0 and quiet > 1.0:
            break
        gevent.sleep(0.05)
    bridge.stop(sleep=gevent.sleep)
    if state.pump is not None:
        state.pump.kill()
    _pump(environment, bridge)
    if bridge.error is not None:
        log.error("publishing loop failed: %s", bridge.error)


class AuditPublisher(User):
    """Publishes corpus records (single and EventList messages) at the configured rate."""

    def on_start(self) -> None:
        options = self.environment.parsed_options
        users = max(getattr(options, "num_users", None) or 1, 1)
        state = STATE["state"]
        per_user = options.rate / state.records_per_message / users
        self._pace = constant_throughput(per_user)
        self._random = random.Random()

    def wait_time(self) -> float:
        return float(self._pace(self))

    @task
    def publish(self) -> None:
        """Publish one single-record or EventList message to the next partition."""
        state = STATE.get("state")
        if state is None:
            return
        feed = state.feed
        lists = self._random.random() < state.list_share
        message = feed.event_list() if lists else feed.single()
        while not state.bridge.publish(
            message.subject, message.payload, message.name, message.partition, message.ids
        ):
            gevent.sleep(0.005)  # max_in_flight publishes wait for their PubAck


class KafkaPublisher(AuditPublisher):
    """:class:`AuditPublisher` on Kafka (``--kafka-brokers``): the same messages to the topic
    partitions, each send a request of type ``kafka``."""


class IngestPoster(FastHttpUser):
    """Posts audit EventLists to ``activity ingest`` (``--host``) at the configured rate."""

    host = "http://127.0.0.1:8443"

    def on_start(self) -> None:
        options = self.environment.parsed_options
        users = max(getattr(options, "num_users", None) or 1, 1)
        low, high = STATE["state"].http_sizes
        self._pace = constant_throughput(options.rate / ((low + high) / 2) / users)
        self._random = random.Random()

    def wait_time(self) -> float:
        return float(self._pace(self))

    @task
    def post(self) -> None:
        """Post one EventList; on 200, count its records per partition from the answer."""
        state = STATE.get("state")
        if state is None:
            return
        batch = state.feed.batch(self._random.randint(*state.http_sizes))
        started = time.perf_counter()
        state.bridge.expect(batch.ids, batch.partitions, started)
        with self.client.post(
            "/audit", data=batch.body, headers=state.http_headers, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
                return
            response.success()
            result = orjson.loads(response.content or b"{}")
        ms = (time.perf_counter() - started) * 1000
        fire = self.environment.events.request.fire
        for partition, count in (result.get("partitions") or {}).items():
            fire(
                request_type="ingest",
                name=f"records p{partition}",
                response_time=ms,
                response_length=count,
                exception=None,
                context={},
            )
