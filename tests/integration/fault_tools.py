"""Tools of the fault-matrix tests (``test_fault_matrix.py``): inputs, observation, workers.

Observation reads what an operator would: the input consumers' backlogs, the output streams'
messages and ``Nats-Msg-Id`` headers, the store through ``FINAL``. Workers run in-process
(:func:`worker_on`, for the pipeline's state and metrics) or as ``activity run`` child processes
(:func:`start_worker`, for kill -9 and a real read-only data directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import orjson
from nats.js import api

from processor.config import Settings
from processor.sink.base import Sink
from processor.stream.topology import STREAMS
from processor.worker.runner import Worker
from tests.integration import records

PARTITIONS = 4
ACK_WAIT = 2.0
ROWS_SQL = (
    "SELECT origin_id, activity_name, JSONExtractString(activity_json, 'spec', 'summary') AS "
    "summary FROM audit.activities FINAL"
)


# -- inputs ----------------------------------------------------------------------------------------
def settings(url: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "nats_url": url, "partition_count": PARTITIONS, "batch_max_age": 0.1, "ack_wait": ACK_WAIT,
        "health_addr": "", "policy_bucket": "", "watch_interval": 0.2,
    }  # fmt: skip
    return Settings(**{**base, **overrides})


def as_messages(
    recs: list[dict[str, Any]], lists: int = 0, per_list: int = 10, partitions: int = PARTITIONS
) -> list[tuple[str, bytes]]:
    """The first ``lists * per_list`` records as EventLists, the rest one per message."""
    cut = lists * per_list
    out = [
        (f"audit.k8s.p{(i // per_list) % partitions}", records.event_list(recs[i : i + per_list]))
        for i in range(0, cut, per_list)
    ]
    return out + [(records.audit_subject(r, partitions), orjson.dumps(r)) for r in recs[cut:]]


async def publish(js: Any, messages: list[tuple[str, bytes]], tag: str) -> None:
    for i, (subject, payload) in enumerate(messages):
        await js.publish(subject, payload, headers={"Nats-Msg-Id": f"{tag}-{i}"})


# -- observation ----------------------------------------------------------------------------------
async def until(check: Any, timeout: float = 30.0, what: str = "") -> None:
    """Poll ``check`` (a function, sync or async) until true; a bound, not a timing."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(0.05)


async def backlog(js: Any, durables: tuple[str, ...] = ()) -> tuple[int, int, int]:
    """(not delivered, delivered and not acked, redelivered) over the input streams' consumers."""
    pending = unacked = redelivered = 0
    for stream in ("AUDIT_EVENTS", "EVENTS"):
        for info in await js.consumers_info(stream):
            if durables and info.name not in durables:
                continue
            pending += info.num_pending or 0
            unacked += info.num_ack_pending or 0
            redelivered += info.num_redelivered or 0
    return pending, unacked, redelivered


async def drained(js: Any) -> bool:
    pending, unacked, _ = await backlog(js)
    return pending == unacked == 0


async def count(js: Any, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


async def read_stream(js: Any, stream: str) -> list[Any]:
    """Every message of ``stream`` (not acknowledged: a work queue keeps them)."""
    total = await count(js, stream)
    if not total:
        return []
    config = api.ConsumerConfig(ack_wait=60, max_ack_pending=total + 1)
    sub = await js.pull_subscribe(STREAMS[stream].subjects[0], stream=stream, config=config)
    msgs: list[Any] = []
    try:
        while len(msgs) < total:
            msgs += await sub.fetch(min(500, total - len(msgs)), timeout=5)
    finally:
        name = (await sub.consumer_info()).name
        await sub.unsubscribe()
        await js.delete_consumer(stream, name)
    return msgs


async def message_ids(js: Any, stream: str) -> list[str]:
    return [(m.headers or {}).get("Nats-Msg-Id", "") for m in await read_stream(js, stream)]


def counter_total(counter: Any) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


def stored_once(sink: Sink, recs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The store's rows by origin id; asserts one per record and nothing else."""
    rows = sink.query(ROWS_SQL)
    origins = [r["origin_id"] for r in rows]
    assert len(origins) == len(set(origins)), "a duplicate is visible through FINAL"
    assert sorted(origins) == sorted(r["auditID"] for r in recs)
    return {r["origin_id"]: r for r in rows}


def assert_published_once(ids: list[str], rows: dict[str, dict[str, Any]], recs: list[Any]) -> None:
    """ACTIVITIES holds exactly the activities of ``recs`` (by name = Nats-Msg-Id), once each."""
    assert len(ids) == len(set(ids)), "an activity is on ACTIVITIES twice"
    assert sorted(ids) == sorted(rows[r["auditID"]]["activity_name"] for r in recs)


@contextlib.asynccontextmanager
async def worker_on(
    url: str, policy_dir: Path, sink: Sink, **overrides: Any
) -> AsyncIterator[tuple[Worker, Any]]:
    """An in-process worker storing into ``sink``, and a JetStream context of the test's own."""
    worker = Worker(settings(url, **overrides), [str(policy_dir)], sink=sink)
    await worker.start()
    nc = await nats.connect(url)
    try:
        yield worker, nc.jetstream()
    finally:
        await nc.drain()
        await worker.stop()


# -- worker processes -----------------------------------------------------------------------------
def start_worker(
    url: str, log: Path, policies: Path, *flags: str, prefix: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """``activity run`` as a child process; later ``flags`` override the defaults here."""
    cmd = [
        *(prefix or [sys.executable, "-m", "processor"]), "run", "--nats-url", url,
        "--policies", str(policies), "--policy-bucket", "", "--health-addr", "",
        "--partition-count", str(PARTITIONS), "--batch-max-age", "0.2",
        "--ack-wait", str(ACK_WAIT), *flags,
    ]  # fmt: skip
    with open(log, "ab") as err:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)


async def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 30)


async def terminate(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM; the worker must flush, ack and exit 0."""
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, 60)
    assert code == 0, log.read_text()[-3000:]


@contextlib.contextmanager
def log_on_failure(log: Path) -> Iterator[None]:
    """Print the end of the workers' log when the test fails."""
    try:
        yield
    except BaseException:
        if log.exists():
            print(f"--- worker log ({log}) ---\n{log.read_text()[-4000:]}")
        raise


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """(status, body) of ``GET path``; (0, b"") while nothing listens yet."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0, b""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: probe\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def at_least(value: Any, floor: int) -> bool:
    """Whether the awaitable ``value`` is at least ``floor`` (for :func:`until`)."""
    return int(await value) >= floor


class ReadOnlyStore:
    """Makes a chDB directory read-only for a worker process, and writable again.

    ``chmod -R a-w`` binds any user but root, whose CAP_DAC_OVERRIDE ignores file modes (CI runs
    as root): a root worker is then started without that capability (``setpriv``), so the mode
    binds it too. Where neither works, the worker runs with a wrapper around the real chDB sink
    whose inserts raise what chDB raises for a read-only directory, through the product's own
    error classification, while a flag file exists.
    """

    def __init__(self, path: Path, flag: Path) -> None:
        self.path = path
        self.flag = flag
        self.prefix = self._prefix()

    def _prefix(self) -> list[str] | None:
        python = [sys.executable, "-m", "processor"]
        if os.geteuid() != 0:
            return python
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            return None
        drop = [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]
        probe = self.path.parent / "read-only-probe"
        probe.mkdir()
        probe.chmod(0o555)
        try:
            proc = subprocess.run([*drop, "touch", str(probe / "x")], capture_output=True)
        finally:
            probe.chmod(0o755)
        return [*drop, *python] if proc.returncode != 0 else None

    def command(self) -> list[str]:
        if self.prefix is not None:
            return self.prefix
        return [sys.executable, "-c", _FAILING_SINK, str(self.flag)]

    def fail(self) -> None:
        if self.prefix is not None:
            subprocess.run(["chmod", "-R", "a-w", str(self.path)], check=True)
        else:
            self.flag.touch()

    def repair(self) -> None:
        if self.prefix is not None and self.path.exists():
            subprocess.run(["chmod", "-R", "u+w", str(self.path)], check=True)
        self.flag.unlink(missing_ok=True)


_FAILING_SINK = """
import os, runpy, sys
from processor.sink import chdb
flag, real = sys.argv.pop(1), chdb.ChdbSink.insert
TEXT = ("Code: 1001. DB::Exception: std::__1::filesystem::filesystem_error: filesystem error: "
        "in create_directories: Permission denied [tmp_insert]. (STD_EXCEPTION)")
def insert(self, table, rows, token):
    if os.path.exists(flag):
        raise chdb._sink_error(RuntimeError(TEXT), f"insert of {len(rows)} rows into {table}")
    return real(self, table, rows, token)
chdb.ChdbSink.insert = insert
sys.argv[0] = "activity"
runpy.run_module("processor", run_name="__main__")
"""


async def answers(port: int, path: str, status: int) -> bool:
    """Whether ``GET path`` answers ``status`` now."""
    return (await http_get(port, path))[0] == status
