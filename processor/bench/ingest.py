"""``activity bench --ingest``: records/s one ``activity ingest`` process accepts durably.

For each list size (100 and 400 records, kube-apiserver's batches), two phases on a fresh bundled
nats-server each, the same audit records and the same number of concurrent senders:

1. baseline: a bare nats-py producer. The messages the ingest would publish for each EventList
   (per partition, at most ``--batch-items`` records and ``--batch-bytes`` bytes each, with the
   ingest's ``Nats-Msg-Id``; a list of 400 does not fit in one NATS message) are built before the
   clock starts; each sender takes the next list and publishes its messages with ``js.publish``,
   awaiting each PubAck. So the baseline stores the same bytes and does no HTTP, parsing or
   routing: the ratio is what the ingest's path costs over publishing alone.
2. the ingest: ``python -m processor ingest`` as a child process (plain HTTP on loopback, a bearer
   token, the default batching), and senders posting pre-built EventList bodies to ``/audit``
   with aiohttp. A 200 comes only after JetStream acknowledged every message of the request, so
   the rate is of records stored. Afterwards the ingest's ``activity_ingest_records_total`` must
   equal the records sent.

Each phase reports records/s, MB/s of request bodies, p50/p99 of the request (baseline: of a
list's publishes), the CPU the ingest, nats-server and this process used (the ingest's also per
record: on a busy machine the records/s follow the share of a core it gets, its CPU per record
does not), and the machine's 1-minute load average at its end (other work shows there).
``--profile FILE`` runs the ingest under cProfile (``ACTIVITY_INGEST_PROFILE``) and writes one
stats file per list size. The stores live in the system's temporary directory
(``TMPDIR=/dev/shm``: in memory).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from processor.bench.cpu import CpuWindow
from processor.bench.e2e import BenchError, fresh_server
from processor.bench.paced import p50_p99

__all__ = ["LIST_SIZES", "PARTITIONS", "format_table", "run"]

PARTITIONS = 8
LIST_SIZES = (100, 400)
TOKEN = "bench-ingest-token"
#: One list's messages for the baseline: (subject, data, Nats-Msg-Id).
Messages = list[tuple[str, bytes, str]]


_LIST_HEAD = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['


def event_lists(records: Sequence[bytes], size: int) -> list[tuple[bytes, int]]:
    """Serialised records as audit EventList bodies of ``size`` records: (body, records)."""
    out = []
    for i in range(0, len(records), size):
        items = records[i : i + size]
        out.append((_LIST_HEAD + b",".join(items) + b"]}", len(items)))
    return out


def ingest_messages(bodies: Sequence[tuple[bytes, int]], record_limit: int) -> list[Messages]:
    """The messages the ingest publishes for each body (its own parsing and batching)."""
    from processor.ingest.batching import partition_messages
    from processor.ingest.body import LIST_OVERHEAD, parse_body
    from processor.ingest.settings import IngestSettings

    defaults = IngestSettings()
    batch_bytes = min(defaults.batch_bytes, record_limit)
    out = []
    for body, _ in bodies:
        parsed = parse_body("audit", body, PARTITIONS, record_limit - LIST_OVERHEAD)
        messages = partition_messages(parsed, defaults.batch_items, batch_bytes)
        out.append([(m.subject, m.data, m.msg_id) for m in messages])
    return out


async def _senders(
    count: int, concurrency: int, send: Callable[[int], Awaitable[None]]
) -> tuple[float, list[float]]:
    """Run ``send(i)`` for i in 0..count-1 on ``concurrency`` tasks; (seconds, latencies ms)."""
    latencies: list[float] = []
    cursor = iter(range(count))

    async def sender() -> None:
        for i in cursor:
            started = time.perf_counter()
            await send(i)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _figures(
    records: int, size_bytes: int, seconds: float, latencies: list[float], cpu: dict[str, float]
) -> dict[str, float]:
    return {
        "load_1min": os.getloadavg()[0],
        "records_per_s": records / seconds,
        "mb_per_s": size_bytes / seconds / 1e6,
        "seconds": seconds,
        **p50_p99(latencies),
        **cpu,
    }


# -- the baseline --------------------------------------------------------------------------------
async def _baseline(
    url: str, bodies: list[tuple[bytes, int]], concurrency: int, cpu: CpuWindow
) -> dict[str, float]:
    import nats

    from processor.ingest.publish import read_limits
    from processor.stream.topology import ensure_streams

    nc = await nats.connect(url, name="bench-baseline")
    js = nc.jetstream()
    await ensure_streams(js)
    limits = await read_limits(js, nc.max_payload)
    lists = ingest_messages(bodies, limits.audit)

    async def send(i: int) -> None:
        for subject, data, msg_id in lists[i]:
            await js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})

    cpu.start()
    seconds, latencies = await _senders(len(lists), concurrency, send)
    used = cpu.stop()
    await nc.drain()
    total = sum(n for _, n in bodies)
    return _figures(total, sum(len(b) for b, _ in bodies), seconds, latencies, used)


def baseline(bodies: list[tuple[bytes, int]], concurrency: int) -> dict[str, float]:
    """The bare nats-py phase on a fresh nats-server."""
    from processor.commands.run import run_loop

    with fresh_server("bench-ingest-base-") as (url, _tmp, server):
        cpu = CpuWindow({"bench": os.getpid(), **_pid("nats_server", server.pid)})
        figures: dict[str, float] = run_loop(_baseline(url, bodies, concurrency, cpu))
        return figures


def _pid(name: str, pid: int | None) -> dict[str, int]:
    return {name: pid} if pid is not None else {}


# -- the ingest ----------------------------------------------------------------------------------
def ingest(
    bodies: list[tuple[bytes, int]], concurrency: int, profile: str | None = None
) -> dict[str, float]:
    """The ``activity ingest`` phase: a child process on a fresh nats-server, HTTP senders."""
    from processor.bench.ingest_child import IngestStartError, ingest_process, metric_total
    from processor.commands.run import run_loop

    with fresh_server("bench-ingest-") as (url, tmp, server):
        try:
            with ingest_process(url, PARTITIONS, tmp, token=TOKEN, profile=profile) as child:
                pids = {"ingest": child.pid, "bench": os.getpid()}
                cpu = CpuWindow({**pids, **_pid("nats_server", server.pid)})
                figures: dict[str, float] = run_loop(_post_all(child.url, bodies, concurrency, cpu))
                stored = metric_total(child.url + "/metrics", "activity_ingest_records_total")
        except IngestStartError as exc:
            raise BenchError(str(exc)) from None
    sent = sum(n for _, n in bodies)
    if stored != sent:
        raise BenchError(f"the ingest acknowledged {stored:,.0f} records of {sent:,}")
    return figures


async def _post_all(
    base: str, bodies: list[tuple[bytes, int]], concurrency: int, cpu: CpuWindow
) -> dict[str, float]:
    import aiohttp

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    failures: dict[int, int] = {}
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:

        async def send(i: int) -> None:
            async with http.post(base + "/audit", data=bodies[i][0]) as response:
                await response.read()
                if response.status != 200:
                    failures[response.status] = failures.get(response.status, 0) + 1

        cpu.start()
        seconds, latencies = await _senders(len(bodies), concurrency, send)
        used = cpu.stop()
    if failures:
        raise BenchError(f"the ingest refused requests: {failures} (status: count)")
    total = sum(n for _, n in bodies)
    return _figures(total, sum(len(b) for b, _ in bodies), seconds, latencies, used)


# -- the run -------------------------------------------------------------------------------------
def run(
    count: int,
    seed: int,
    mix: str = "standard",
    concurrency: int = 8,
    sizes: Sequence[int] = LIST_SIZES,
    profile: str | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Both phases for each list size over ``count`` audit records of the corpus ``mix``."""
    from processor.bench.corpus import generate

    progress(f"generating {count:,} audit records ({mix} mix, seed {seed})")
    records = [orjson.dumps(r) for r in generate(count, seed, event_ratio=0.0, mix=mix)]
    size_bytes = sum(map(len, records))
    figures: dict[str, Any] = {
        "records": len(records),
        "mix": mix,
        "record_bytes": size_bytes / max(len(records), 1),
        "partitions": PARTITIONS,
        "concurrency": concurrency,
        "lists": {},
    }
    for size in sizes:
        bodies = event_lists(records, size)
        progress(f"EventLists of {size}: baseline (nats-py js.publish)")
        base = baseline(bodies, concurrency)
        progress(f"EventLists of {size}: activity ingest")
        path = f"{profile}.{size}" if profile else None
        figures["lists"][str(size)] = {
            "baseline": base,
            "ingest": ingest(bodies, concurrency, path),
        }
    return figures


def format_table(figures: dict[str, Any]) -> str:
    """The figures as printed by ``activity bench --ingest``."""
    lines = [
        f"corpus: {figures['records']:,} audit records, {figures['mix']} mix, "
        f"{figures['record_bytes'] / 1000:.1f} KB each on average; {figures['partitions']} "
        f"partitions; {figures['concurrency']} concurrent senders",
        f"{'path':<52}{'records/s':>11}{'MB/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'vs baseline':>13}",
    ]
    for size, phases in figures["lists"].items():
        base = phases["baseline"]["records_per_s"]
        lines.append(f"EventLists of {size}")
        for name, key in (
            ("  baseline: nats-py js.publish, each PubAck awaited", "baseline"),
            ("  activity ingest: POST /audit, 200 after PubAcks", "ingest"),
        ):
            f = phases[key]
            lines.append(
                f"{name:<52}{f['records_per_s']:>11,.0f}{f['mb_per_s']:>8,.0f}"
                f"{f['p50_ms']:>9.1f}{f['p99_ms']:>9.1f}{f['records_per_s'] / base:>12.2f}x"
            )
            lines += _cpu_line(f)
    return "\n".join(lines)


def _cpu_line(f: dict[str, float]) -> list[str]:
    procs = [("ingest", "ingest"), ("nats-server", "nats_server"), ("bench", "bench")]
    parts = [f"{label} {f[f'{k}_cpu_pct']:.0f}%" for label, k in procs if f"{k}_cpu_pct" in f]
    if "ingest_cpu_pct" in f and f["records_per_s"] > 0:  # what carries over to an idle machine
        per_record = f["ingest_cpu_pct"] / 100 / f["records_per_s"] * 1e6
        parts[0] += f" ({per_record:.1f} µs per record)"
    if not parts:
        return []
    line = "    CPU (% of one core): " + ", ".join(parts)
    if "system_busy_pct" in f:
        line += f"; the {f.get('cores', 1):.0f} cores {f['system_busy_pct']:.0f}% busy"
    if "load_1min" in f:
        line += f"; load average {f['load_1min']:.1f}"
    return [line]
