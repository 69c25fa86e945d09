"""Soak: minutes of mixed valid and hostile load through a real worker, then conservation totals.

Starts a nats-server (taking AUDIT_EVENTS' 10 MiB messages) and an ``activity run`` worker
process (chDB, bundled policies), then publishes for ``--duration`` seconds at ``--rate``
messages/s: valid records, wanted Deployment changes and EventLists of up to 100, with
``--hostile`` of them hostile (:mod:`processor.bench.hostile`: every JSON type, invalid UTF-8,
truncated JSON, 100k-deep nesting, duplicate keys, wrong types) and ``--large`` of them huge (a
10 MiB input, or a 1 MiB name whose Activity is too large for ACTIVITIES). AUDIT_EVENTS and the
dead-letter stream are created with room for the whole run (:data:`STORE_BYTES`). Every 10 s it
prints the worker's RSS, the records it committed and its oldest unacknowledged input. At the end it
waits for the worker to acknowledge everything, stops it, and compares what came out with what
a model translator (same policies, in this process) says should have:

- activities: distinct names on ACTIVITIES, and rows in ClickHouse (total and distinct);
- dead letters on ACTIVITY_DEAD_LETTER, by error type;
- inputs still unacknowledged.

Not a test: run it as

    python tests/bench/soak.py [--duration 600] [--rate 200] [--hostile 0.2] [--large 0.002]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import nats
import orjson
from nats.js.api import AckPolicy, ConsumerConfig

from processor.activity import encode_activity
from processor.bench.hostile import MIB, Builder, random_spec
from processor.bench.local import free_port
from processor.deadletter import payload_from_ref
from processor.policy.bundled import bundled_policy_dir
from processor.policy.compile import load_engine
from processor.sink.factory import open_sink
from processor.stream.server import NatsServer
from processor.stream.topology import HEADER_RESERVE, STREAMS, ensure_streams
from processor.translate import Output, Translator

REPORT_EVERY = 10.0
#: AUDIT_EVENTS and the DLQ hold the whole run: a fifth of the load is hostile (a stress far past
#: production's), and at the default 1 GiB the DLQ fills and the worker pauses, by design
#: (docs/reliability.md), and AUDIT_EVENTS evicts inputs that pointer dead letters name.
STORE_BYTES = 16 << 30
_RSS = re.compile(r"VmRSS:\s+(\d+)")
ACTIVITY_LIMIT = MIB - HEADER_RESERVE  # ACTIVITIES' max message size, as the worker reads it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    parser.add_argument("--rate", type=float, default=200.0, help="messages/s (200)")
    parser.add_argument("--hostile", type=float, default=0.2, help="hostile share (0.2)")
    parser.add_argument("--large", type=float, default=0.002, help="huge-message share (0.002)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="activity-soak-") as tmp:
        ok = asyncio.run(soak(Path(tmp), args))
    sys.exit(0 if ok else 1)


async def soak(root: Path, args: argparse.Namespace) -> bool:
    server = NatsServer(root / "nats", max_payload=12 * MIB)
    url = server.start()
    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in ("AUDIT_EVENTS", "ACTIVITY_DEAD_LETTER"):  # room for the whole run (see above)
        await js.add_stream(dataclasses.replace(STREAMS[name].config(), max_bytes=STORE_BYTES))
    await ensure_streams(js)
    port = free_port()
    worker = _start_worker(url, root, port)
    model = Translator(load_engine([str(bundled_policy_dir())]))
    rng = random.Random(args.seed)
    builder = Builder("soak-")
    want_names: set[str] = set()
    want_letters: Counter[str] = Counter()
    sent = records = 0
    try:
        await _wait_ready(port)
        started = time.monotonic()
        next_report = started + REPORT_EVERY
        print("   time   sent  records  worker RSS  committed  oldest pending")
        while (now := time.monotonic()) - started < args.duration:
            subject, payload, hint = builder.message(random_spec(rng, args.hostile, args.large))
            await js.publish(subject, payload, timeout=30)
            sent += 1
            records += _expect(model, payload, hint, want_names, want_letters)
            if now >= next_report:
                next_report += REPORT_EVERY
                print(_status(now - started, sent, records, worker.pid, port))
            pause = started + sent / args.rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        print(_status(time.monotonic() - started, sent, records, worker.pid, port))
        unacked = await _drain(js)
    finally:
        worker.terminate()
        worker.wait(60)
    names = await _activity_names(js)
    letters, pointers, resolved = await _dead_letters(js)
    await nc.close()
    server.stop()
    rows, distinct = _stored(root / "chdb")
    checks = [
        ("activities on ACTIVITIES (distinct names)", len(want_names), len(names & want_names)),
        ("unexpected activities on ACTIVITIES", 0, len(names - want_names)),
        ("activity rows in ClickHouse", len(want_names), rows),
        ("distinct activities in ClickHouse", len(want_names), distinct),
        ("dead letters", sum(want_letters.values()), sum(letters.values())),
        ("pointer dead letters whose payload reads back", pointers, resolved),
        ("inputs left unacknowledged", 0, unacked),
    ]
    print(f"\n{sent} messages, {records} records in {args.duration:.0f} s")
    for error_type in sorted(set(want_letters) | set(letters)):
        print(f"  dead letters {error_type}: expected {want_letters[error_type]}, "
              f"got {letters[error_type]}")  # fmt: skip
    ok = True
    for what, expected, got in checks:
        ok &= expected == got
        print(f"  {'ok  ' if expected == got else 'FAIL'} {what}: expected {expected}, got {got}")
    print("conservation:", "held" if ok else "BROKEN")
    return ok


def _expect(
    model: Translator, payload: bytes, hint: str, names: set[str], letters: Counter[str]
) -> int:
    out = Output()
    model.translate(payload, out, hint)  # type: ignore[arg-type]
    for activity in out.activities:
        if len(encode_activity(activity)) > ACTIVITY_LIMIT:
            letters["activity_too_large"] += 1
        else:
            names.add(activity["metadata"]["name"])
    for record in out.dead_letters:
        letters[record["errorType"]] += 1
    return out.records


def _start_worker(url: str, root: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "processor", "run", "--nats-url", url,
        "--clickhouse-url", f"chdb://{root / 'chdb'}", "--policy-bucket", "",
        "--health-addr", f"127.0.0.1:{port}", "--partition-count", "2", "--log-level", "WARNING",
    ]  # fmt: skip
    with open(root / "worker.log", "ab") as log:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)


async def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _get(port, "/readyz")
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise SystemExit("the worker did not become ready in 60 s")


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return str(reply.read().decode())


def _metric(text: str, name: str) -> float:
    return sum(float(m) for m in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def _status(elapsed: float, sent: int, records: int, pid: int, port: int) -> str:
    rss = "?"
    try:
        found = _RSS.search(Path(f"/proc/{pid}/status").read_text())
        rss = f"{int(found[1]) / 1024:.0f} MiB" if found else "?"
    except OSError:
        pass
    try:
        text = _get(port, "/metrics")
        committed = f"{_metric(text, 'activity_processor_records_committed_total'):.0f}"
        oldest = f"{_metric(text, 'activity_processor_oldest_pending_seconds'):.1f} s"
    except OSError:
        committed = oldest = "?"
    return f"{elapsed:6.0f}s {sent:6d} {records:8d} {rss:>11} {committed:>10} {oldest:>15}"


async def _drain(js: Any, timeout: float = 300.0) -> int:
    """Wait until the worker's consumers have nothing pending; returns what is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = 0
        for stream in ("AUDIT_EVENTS", "EVENTS"):
            for info in await js.consumers_info(stream):
                left += (info.num_pending or 0) + (info.num_ack_pending or 0)
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


async def _activity_names(js: Any) -> set[str]:
    """The ``Nats-Msg-Id`` (activity name) of every message on ACTIVITIES, read in batches."""
    total = (await js.stream_info("ACTIVITIES")).state.messages
    sub = await js.pull_subscribe(
        "activities.>",
        durable=None,
        stream="ACTIVITIES",
        config=ConsumerConfig(ack_policy=AckPolicy.NONE),
    )
    names: set[str] = set()
    seen = 0
    while seen < total:
        try:
            msgs = await sub.fetch(1000, timeout=2.0)
        except (nats.errors.TimeoutError, TimeoutError):
            break
        for msg in msgs:
            names.add((msg.headers or {}).get("Nats-Msg-Id", ""))
        seen += len(msgs)
    await sub.unsubscribe()
    return names


async def _dead_letters(js: Any) -> tuple[Counter[str], int, int]:
    """Dead letters by error type; pointers, and how many of their payloads read back intact."""
    sub = await js.pull_subscribe("activity.dlq.>", durable=None, stream="ACTIVITY_DEAD_LETTER")
    types: Counter[str] = Counter()
    pointers = resolved = 0
    while True:
        try:
            msgs = await sub.fetch(500, timeout=1.0)
        except (nats.errors.TimeoutError, TimeoutError):
            return types, pointers, resolved
        for msg in msgs:
            record = orjson.loads(msg.data)
            types[record["errorType"]] += 1
            ref = record.get("originalPayloadRef")
            if ref is not None:
                pointers += 1
                held = await js.get_msg(ref["stream"], ref["sequence"])
                with contextlib.suppress(ValueError):
                    resolved += bool(payload_from_ref(ref, held.data))
            await msg.ack()  # a work queue: the run is over, and unacked ones would stall it


def _stored(chdb: Path) -> tuple[int, int]:
    sink = open_sink(f"chdb://{chdb}")
    sink.open()
    try:
        row = sink.query(
            "SELECT count() AS n, uniqExact(activity_name) AS d FROM audit.activities"
        )[0]
        return int(row["n"]), int(row["d"])
    finally:
        sink.close()


if __name__ == "__main__":
    main()
