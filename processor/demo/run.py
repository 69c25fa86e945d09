"""``activity demo``: the whole pipeline on one machine with nothing installed but this package.

Starts the bundled ``nats-server`` on a free loopback port and chDB in a data directory, migrates,
runs a worker with the bundled policies, publishes the bundled scenario (audit records as
EventLists per partition, as an apiserver webhook would, and Kubernetes Events one per message),
waits until every message is committed and acked, then prints the stored timeline and a line with
the counts. The worker stores the raw audit logs and Events too (``store_raw``), so ``activity
history``, ``activity audit query`` and ``activity events query`` have the demo's records to show;
:mod:`processor.demo.explore` prints the commands. The run is too small and too short to measure
throughput, so no rate is printed: ``activity bench`` measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from processor.config import Settings
from processor.demo.scenario import scenario
from processor.demo.timeline import TIMELINE_SQL, format_timeline
from processor.policy.bundled import bundled_policy_dir
from processor.sink.factory import open_sink
from processor.sink.migrate import migrate
from processor.stream.partitions import audit_partition_subject, event_partition_subject
from processor.stream.server import NatsServer
from processor.subjects import audit_partition, event_partition
from processor.worker.runner import Worker

PARTITIONS = 4
LIST_SIZE = 50


@dataclass
class DemoResult:
    """Counts of one demo run."""

    messages: int
    records: int
    activities: int
    dead_letters: int
    timeline: list[dict[str, Any]]

    def summary(self) -> str:
        """The counts line (no rate: a demo this small measures start-up, not throughput)."""
        return (
            f"{self.records} records in {self.messages} messages -> {self.activities} activities, "
            f"{self.dead_letters} dead letters (throughput: `activity bench`)"
        )


def _partition(kind: str, payload: dict[str, Any]) -> int:
    if kind == "audit":
        return audit_partition(payload, PARTITIONS)
    return event_partition(payload, PARTITIONS)


def messages(records: list[Any]) -> Iterator[tuple[str, bytes]]:
    """(subject, payload) in publish order: audit EventLists per partition, Events one by one."""
    lists: dict[int, list[dict[str, Any]]] = {}
    for record in records:
        part = _partition(record.kind, record.payload)
        if record.kind == "event":
            yield event_partition_subject(part), orjson.dumps(record.payload)
            continue
        items = lists.setdefault(part, [])
        items.append(record.payload)
        if len(items) >= LIST_SIZE:
            yield audit_partition_subject(part), _event_list(items)
            lists[part] = []
    for part, items in sorted(lists.items()):
        if items:
            yield audit_partition_subject(part), _event_list(items)


def _event_list(items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items})


async def run_demo(data_dir: Path, *, keep: bool = False, out: Any = None) -> DemoResult:
    """Run the demo in ``data_dir``; with ``keep``, stay up until cancelled (Ctrl-C)."""
    with NatsServer(data_dir / "nats", log_file=data_dir / "nats-server.log") as server:
        url = server.start()
        sink = open_sink(f"chdb://{data_dir / 'chdb'}")
        try:
            migrate(sink)
            settings = Settings(
                nats_url=url,
                partition_count=PARTITIONS,
                health_addr="127.0.0.1:0",
                batch_max_age=0.1,
                watch_interval=1.0,
                store_raw=True,  # audit_logs and k8s_events: history, audit and events queries
            )
            worker = Worker(settings, [str(bundled_policy_dir())], sink=sink)
            await worker.start()
            try:
                result = await _publish_and_wait(worker, url)
                result.timeline = sink.query(TIMELINE_SQL)
                if out is not None:
                    width = None if getattr(out, "isatty", lambda: False)() else 0
                    print(format_timeline(result.timeline, width), file=out)
                    print(result.summary(), file=out)
                if keep:
                    _print_keep(out, url, worker, data_dir)
                    await asyncio.Event().wait()
            finally:
                await worker.stop()
        finally:
            sink.close()
    return result


async def _publish_and_wait(worker: Worker, url: str, timeout: float = 120.0) -> DemoResult:
    import nats

    records = scenario()
    batch = list(messages(records))
    nc = await nats.connect(url, name="activity-demo")
    try:
        js = nc.jetstream()
        for subject, payload in batch:
            await js.publish(subject, payload)
    finally:
        await nc.drain()
    pipeline = worker.pipeline
    assert pipeline is not None
    deadline = time.monotonic() + timeout
    while pipeline.committed_messages < len(batch):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {pipeline.committed_messages} of {len(batch)} messages were processed"
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
        len(batch), pipeline.committed_records, pipeline.committed_activities, dead, []
    )


def _print_keep(out: Any, url: str, worker: Worker, data_dir: Path) -> None:
    port = worker.health.port if worker.health else 0
    print(
        f"\nThe demo keeps running (Ctrl-C stops it):\n"
        f"  NATS:     {url}   (publish audit events to audit.k8s.p<N> or audit.k8s.activity)\n"
        f"  watch:    activity watch --nats-url {url}\n"
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
