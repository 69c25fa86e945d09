"""Drain rate of 1, 2, 3 ... worker processes on disjoint partitions, beside the capacity model.

The check of ``docs/scaling.md`` on this machine. For each worker count W: a fresh nats-server,
the corpus published first as EventLists of ``--list-size`` over ``--partitions`` partition
subjects (12 by default, so 1, 2, 3 and 4 workers get equal shares), then W ``activity run``
processes (chDB each, the bundled policies), worker i owning the i-th contiguous range of the
partitions (``processor.commands.loadtest.split_partitions``). So that no worker starts before
the others, the workers start on empty streams, their consumers are then paused (JetStream's
consumer pause API), the corpus is published and every consumer resumed at once. The rate runs
from the resume to the last record translated (``partition_records_total`` summed over the
workers); meanwhile the CPU seconds of the workers and of nats-server are read from ``/proc``.

The model (``docs/scaling.md``): a worker process turns at most ``R1`` records/s (its one
event-loop thread), and every record costs ``c`` CPU seconds in total (worker threads plus
nats-server delivering it and taking its ack). On ``C`` cores the drain rate of W workers is

    predicted(W) = min(W * R1, C / c)

``R1`` and ``c`` come from the W=1 run (``R1`` its rate, ``c`` the CPU of the worker and
nats-server per record); each later W is predicted from them and printed beside the measured rate
with the error. On this 2-core machine W=2 and W=3 are bound by ``C / c``: a CPU-bound check.
Other jobs share the machine, so ``C`` is what they left: the cores busy during the run (from
``/proc/stat``) less those of the workers and nats-server, taken from the machine's cores (the
``avail`` column; ``--cores`` sets the machine's).
Not a test: run it as

    python tests/bench/scaling_workers.py --count 200000 --mix production [--workers 1 2 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from processor.bench.corpus import generate
from processor.bench.corpus.vocab import MIXES
from processor.bench.cpu import CpuWindow, process_cpu
from processor.bench.e2e import (
    COMMITTED,
    PROCESSED,
    Corpus,
    _provision_and_publish,
    fresh_server,
    metric_total,
)
from processor.bench.local import free_port, http_status, stop_process
from processor.commands.loadtest import split_partitions
from processor.policy.bundled import bundled_policy_dir
from processor.subjects import audit_partition, event_partition


class PartitionedCorpus(Corpus):
    """The corpus over ``count`` partitions (``Corpus`` uses the bench's 4)."""

    def __init__(self, records: list[dict[str, Any]], count: int) -> None:
        super().__init__(records)
        self.count = count

    def subject(self, record: dict[str, Any]) -> str:
        if record.get("objectRef") is None:
            return f"events.p{event_partition(record, self.count)}"
        return f"audit.k8s.p{audit_partition(record, self.count)}"


@contextlib.contextmanager
def workers(
    url: str, tmp: Path, count: int, partitions: int, policies: list[str]
) -> Iterator[list[tuple[subprocess.Popen[bytes], int]]]:
    """``count`` worker processes on disjoint partition ranges; yields (process, port) once all
    answer /readyz."""
    procs: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        for i, parts in enumerate(split_partitions(partitions, count)):
            data = tmp / f"worker-{i}"
            data.mkdir()
            port = free_port()
            cmd = [
                sys.executable, "-m", "processor", "run",
                "--nats-url", url,
                "--clickhouse-url", f"chdb://{data / 'chdb'}",
                "--health-addr", f"127.0.0.1:{port}",
                "--partition-count", str(partitions),
                "--partitions", parts,
                "--shared-consumer", "false",
                "--policy-bucket", "",
                "--log-level", "WARNING",
                "--policies", *policies,
            ]  # fmt: skip
            with open(data / "worker.log", "ab") as log:
                procs.append((subprocess.Popen(cmd, stdout=log, stderr=log), port))
        deadline = time.monotonic() + 120
        for proc, port in procs:
            while http_status(f"http://127.0.0.1:{port}/readyz") != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start; see {tmp}/worker-*/worker.log")
                time.sleep(0.02)
        yield procs
    finally:
        for proc, _ in procs:
            stop_process(proc)


def total(ports: list[int], name: str) -> float:
    return sum(metric_total(port, name) for port in ports)


async def pause_all(url: str, until: str) -> int:
    """Pause (``until`` an RFC 3339 time) or resume (``""``) every consumer of the input streams;
    returns how many."""
    import json

    import nats

    nc = await nats.connect(url)
    try:
        count = 0
        for stream in ("AUDIT_EVENTS", "EVENTS"):
            for info in await nc.jetstream().consumers_info(stream):
                body = json.dumps({"pause_until": until} if until else {}).encode()
                api = f"$JS.API.CONSUMER.PAUSE.{stream}.{info.name}"
                reply = json.loads((await nc.request(api, body, timeout=5)).data)
                if "error" in reply:
                    raise RuntimeError(f"{api}: {reply['error']}")
                count += 1
        return count
    finally:
        await nc.drain()


def drain(
    corpus: Corpus, records: int, count: int, partitions: int, list_size: int, policies: list[str]
) -> dict[str, float]:
    """Records/s of ``count`` workers draining the corpus, and CPU seconds per record."""
    with fresh_server("bench-scaling-") as (url, tmp, server):
        asyncio.run(_provision_and_publish(url, []))
        with workers(url, tmp, count, partitions, policies) as procs:
            if asyncio.run(pause_all(url, "2099-01-01T00:00:00Z")) < partitions:
                raise RuntimeError("fewer consumers than partitions")
            asyncio.run(_provision_and_publish(url, corpus.lists(list_size)))
            ports = [port for _, port in procs]
            pids = {f"w{i}": proc.pid for i, (proc, _) in enumerate(procs)}
            window = CpuWindow({**pids, "nats": server.pid or 0})
            cpu0 = {name: process_cpu(pid) or 0.0 for name, pid in window.pids.items()}
            window.start()
            first, started = total(ports, PROCESSED), time.perf_counter()
            asyncio.run(pause_all(url, ""))
            while (done := total(ports, PROCESSED)) < records:
                time.sleep(0.02)
            seconds = time.perf_counter() - started
            cpu1 = {name: process_cpu(pid) or 0.0 for name, pid in window.pids.items()}
            busy = window.stop()
            while total(ports, COMMITTED) < records:
                time.sleep(0.05)
    translated = done - first
    worker_cpu = sum(cpu1[n] - cpu0[n] for n in pids)
    nats_cpu = cpu1["nats"] - cpu0["nats"]
    return {
        "rate": translated / seconds,
        "worker_cpu_per_record": worker_cpu / translated,
        "nats_cpu_per_record": nats_cpu / translated,
        "busy_pct": busy.get("system_busy_pct", 0.0),
        "others_cores": busy.get("system_busy_pct", 0.0) / 100 * (os.cpu_count() or 1)
        - (worker_cpu + nats_cpu) / seconds,
        "worker_cores": worker_cpu / seconds,
        "nats_cores": nats_cpu / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", choices=sorted(MIXES), default="production")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--list-size", type=int, default=100)
    parser.add_argument("--cores", type=float, default=float(os.cpu_count() or 1))
    parser.add_argument("--policies", nargs="+", default=[str(bundled_policy_dir())])
    args = parser.parse_args()

    corpus = PartitionedCorpus(list(generate(args.count, args.seed, mix=args.mix)), args.partitions)
    print(
        f"{args.count:,} records, {args.mix} mix, EventLists of {args.list_size}, "
        f"{args.partitions} partitions, {args.cores:g} cores; load before: {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'workers':>7}{'measured/s':>12}{'predicted/s':>13}{'error':>8}"
        f"{'worker us/rec':>15}{'nats us/rec':>13}{'workers cores':>15}{'nats cores':>12}"
        f"{'busy':>7}{'avail':>7}"
    )
    r1 = per_record = 0.0
    for count in args.workers:
        m = drain(corpus, args.count, count, args.partitions, args.list_size, args.policies)
        if not r1:  # the model's two figures, from the first run
            r1 = m["rate"] / count
            per_record = m["worker_cpu_per_record"] + m["nats_cpu_per_record"]
        avail = max(args.cores - m["others_cores"], 0.1)
        predicted = min(count * r1, avail / per_record)
        error = (m["rate"] - predicted) / predicted
        print(
            f"{count:>7}{m['rate']:>12,.0f}{predicted:>13,.0f}{error:>+8.0%}"
            f"{1e6 * m['worker_cpu_per_record']:>15.1f}{1e6 * m['nats_cpu_per_record']:>13.1f}"
            f"{m['worker_cores']:>15.2f}{m['nats_cores']:>12.2f}{m['busy_pct']:>6.0f}%"
            f"{avail:>7.2f}",
            flush=True,
        )
    print(f"model: R1 = {r1:,.0f} records/s per worker, c = {1e6 * per_record:.1f} us/record")


if __name__ == "__main__":
    main()
