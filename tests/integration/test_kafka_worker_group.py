"""Kafka workers as processes in one consumer group: kill -9 and rejoin, scaling out and in.

Zero loss, and no duplicate visible to queries (``FINAL``): a killed worker's uncommitted records
are read again and stored again, and the storage's dedup collapses them. Each worker process
stores into a chDB directory of its own (chDB allows one process per directory; Debian's
clickhouse-server, 18.16, is too old for the schema); a restarted worker reuses its directory.
Where several workers stored, their rows are inserted into one store afterwards, as they would
have met in one ClickHouse, and counted there with ``FINAL``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from processor.bench.local import free_port
from processor.config import Settings
from processor.kafka.broker import TansuBroker
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate
from tests.integration import records
from tests.integration.fault_tools import http_get, kill, log_on_failure, terminate
from tests.integration.kafka_worker_tools import (
    PARTITIONS,
    committed,
    kafka_settings,
    produce,
)

pytestmark = pytest.mark.integration

_ASSIGNED = re.compile(rb'activity_processor_kafka_assigned_partitions\{topic="([^"]+)"\} (\S+)')


class Group:
    """Worker processes of one group, each with its health port, logging to one file."""

    def __init__(self, settings: Settings, root: Path, policies: Path, log: Path):
        self.settings = settings
        self.root = root
        self.policies = policies
        self.log = log
        self.procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}

    def start(self, name: str, *flags: str) -> None:
        """Start worker ``name`` (``flags`` override the defaults)."""
        s, port = self.settings, free_port()
        cmd = [
            sys.executable, "-m", "processor", "run", "--transport", "kafka",
            "--kafka-brokers", s.kafka_brokers, "--kafka-group", s.kafka_group,
            "--kafka-audit-topic", s.kafka_audit_topic, "--kafka-event-topic", s.kafka_event_topic,
            "--kafka-activity-topic", s.kafka_activity_topic,
            "--kafka-dead-letter-topic", s.kafka_dead_letter_topic,
            "--kafka-policy-topic", s.kafka_policy_topic,
            "--kafka-session-timeout", "4", "--partition-count", str(PARTITIONS),
            "--clickhouse-url", f"chdb://{self.store(name)}", "--policies", str(self.policies),
            "--health-addr", f"127.0.0.1:{port}", "--batch-max-age", "0.2",
            "--batch-max-records", "200", "--max-pending-records", "400", *flags,
        ]  # fmt: skip
        with open(self.log, "ab") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        self.procs[name] = (proc, port)

    def store(self, name: str) -> Path:
        """The chDB directory of worker ``name``."""
        return self.root / name

    async def assigned(self, name: str) -> int:
        """Audit partitions the worker owns now (its metrics); 0 while it does not answer."""
        status, body = await http_get(self.procs[name][1], "/metrics")
        if status != 200:
            return 0
        counts = {t.decode(): float(v) for t, v in _ASSIGNED.findall(body)}
        return int(counts.get(self.settings.kafka_audit_topic, 0))

    async def owners(self, *names: str) -> dict[str, int]:
        return {name: await self.assigned(name) for name in names}

    async def kill(self, name: str) -> None:
        await kill(self.procs.pop(name)[0])

    async def stop_all(self) -> None:
        for name in list(self.procs):
            proc, _ = self.procs.pop(name)
            await terminate(proc, self.log)


async def until_owned(group: Group, names: tuple[str, ...], timeout: float = 60.0) -> dict:
    """Wait until every worker in ``names`` owns audit partitions and together all of them."""
    owners: dict[str, int] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        owners = await group.owners(*names)
        if all(owners.values()) and sum(owners.values()) == PARTITIONS:
            return owners
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"partitions never spread over {names}: {owners}")
        await asyncio.sleep(0.2)


async def until_committed(settings: Settings, total: int) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while sum((await committed(settings)).values()) < total:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the group never committed {total} records")
        await asyncio.sleep(0.3)
    assert sum((await committed(settings)).values()) == total  # nothing past the end


_DUMP = (
    "import sys, orjson\n"
    "from processor.sink.chdb import ChdbSink\n"
    "sink = ChdbSink(sys.argv[1]); sink.open()\n"
    "rows = sink.query('SELECT activity_json FROM audit.activities')\n"
    "sys.stdout.buffer.write(orjson.dumps([r['activity_json'] for r in rows]))\n"
)


def stored_rows(store: Path) -> list[bytes]:
    """Every activity row a worker stored in ``store`` (read by a child: one chDB per process)."""
    out = subprocess.run(
        [sys.executable, "-c", _DUMP, str(store)], capture_output=True, check=True, timeout=120
    ).stdout
    return [row.encode() for row in orjson.loads(out)]


def visible(stores: list[Path], root: Path) -> tuple[int, int, int]:
    """(rows as queries see them, distinct activity names, rows stored) once the rows of every
    store are in one store."""
    rows = [stored_rows(store) for store in stores]
    sink = ChdbSink(root / "merged")
    migrate(sink)
    sink.open()
    try:
        for i, part in enumerate(rows):
            if part:
                sink.insert("activities", part, f"merge-{i}")
        db = sink.database
        final = sink.query(f"SELECT count() AS n FROM {db}.activities FINAL")[0]["n"]
        names = sink.query(f"SELECT uniqExact(activity_name) AS n FROM {db}.activities")
        return int(final), int(names[0]["n"]), sum(map(len, rows))
    finally:
        sink.close()


@contextlib.contextmanager
def group_of(settings: Settings, root: Path, policies: Path) -> Iterator[Group]:
    log = root / "workers.log"
    group = Group(settings, root, policies, log)
    with log_on_failure(log):
        try:
            yield group
        finally:
            for proc, _ in group.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(30)


def test_kill_9_and_rejoin_loses_nothing(
    tansu: TansuBroker, policy_dir: Path, tmp_path: Path
) -> None:
    """The worker is killed with a batch stored but not committed: the broker is frozen
    (SIGSTOP) after the worker read records and before its first insert, so the batch is
    inserted but its publishes and offset commit hang; then the worker is killed. Rejoined, it
    re-reads the stored records and stores them again (the insert tokens or the
    ReplacingMergeTree absorb them): queries see each record once."""
    settings = kafka_settings(tansu)
    audits = [records.audit(f"k-{i}", seq=i) for i in range(2000)]
    kills: list[tuple[int, int]] = []  # (records committed, rows stored) at each kill

    async def main(group: Group) -> None:
        await produce(settings, "audit", audits)
        while not kills or kills[-1][0] >= kills[-1][1]:
            assert len(kills) < 3, f"no kill found records stored and not committed: {kills}"
            group.start("w1", "--batch-max-age", "0.5")
            # read, nothing inserted yet (so no commit under way): freeze the broker
            await until_metric(group, "w1", lambda m: m["records"] > 0)
            os.kill(tansu.pid or 0, signal.SIGSTOP)
            try:  # the open batch is inserted when due; its publishes and commit hang
                await until_metric(group, "w1", lambda m: m["inserts"] >= 1)
                await group.kill("w1")
            finally:
                os.kill(tansu.pid or 0, signal.SIGCONT)
            offsets = sum((await committed(settings)).values())
            kills.append((offsets, len(await asyncio.to_thread(stored_rows, group.store("w1")))))
        group.start("w1")  # rejoins the group and re-reads from the last commit
        await until_committed(settings, len(audits))
        await group.stop_all()

    with group_of(settings, tmp_path, policy_dir) as g:
        asyncio.run(main(g))
    final, names, raw = visible([tmp_path / "w1"], tmp_path)
    assert names == len(audits), f"lost records; (committed, stored) at the kills: {kills}"
    assert final == len(audits), f"{final - len(audits)} duplicates visible ({raw} rows stored)"


_SERIES = {
    "inserts": re.compile(
        rb'activity_processor_sink_flush_duration_seconds_count\{table="activities"\} (\S+)'
    ),
    "records": re.compile(rb"activity_processor_partition_records_total\{[^}]*\} (\S+)"),
}


async def until_metric(
    group: Group, name: str, check: Callable[[dict[str, int]], bool], timeout: float = 60.0
) -> None:
    """Wait until ``check`` holds for worker ``name``'s insert and commit counts."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, body = await http_get(group.procs[name][1], "/metrics")
        if status == 200:
            values = {}
            for key, pattern in _SERIES.items():
                values[key] = int(sum(float(v) for v in pattern.findall(body)))
            if check(values):
                return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{name}: metrics never passed the check")
        await asyncio.sleep(0.01)


@pytest.fixture
def tansu(tmp_path: Path, kafka_broker: TansuBroker) -> Iterator[TansuBroker]:
    """A broker of this test only (it is frozen; ``kafka_broker`` checks the binary)."""
    with TansuBroker(log_file=tmp_path / "tansu.log") as broker:
        yield broker


def test_scaling_out_and_in_moves_partitions_without_loss(
    kafka_broker: TansuBroker, policy_dir: Path, tmp_path: Path
) -> None:
    """Two workers split the partitions, a third joins and gets its share, one is killed and
    the other two take its partitions over; every record is stored, none twice in a query."""
    settings = kafka_settings(kafka_broker)
    phases = [[records.audit(f"s{p}-{i}", seq=i) for i in range(300)] for p in range(3)]
    moves: list[dict[str, int]] = []

    async def main(group: Group) -> None:
        group.start("w1")
        group.start("w2")
        moves.append(await until_owned(group, ("w1", "w2")))
        await produce(settings, "audit", phases[0])
        await until_committed(settings, 300)
        group.start("w3")
        moves.append(await until_owned(group, ("w1", "w2", "w3")))
        await produce(settings, "audit", phases[1])
        await until_committed(settings, 600)
        await group.kill("w1")
        await produce(settings, "audit", phases[2])
        moves.append(await until_owned(group, ("w2", "w3")))
        await until_committed(settings, 900)
        await group.stop_all()

    with group_of(settings, tmp_path, policy_dir) as g:
        asyncio.run(main(g))
    assert [sorted(m) for m in moves] == [["w1", "w2"], ["w1", "w2", "w3"], ["w2", "w3"]]
    final, names, raw = visible([tmp_path / w for w in ("w1", "w2", "w3")], tmp_path)
    assert names == 900  # zero loss
    assert final == 900, f"{final - 900} duplicates visible ({raw} rows stored)"
