"""Schema migrations on chDB: upstream layout, idempotence, checksum drift, renderings, CLI."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest

from processor.commands import migrate as migrate_command
from processor.sink.base import TABLES
from processor.sink.chdb import ChdbSink
from processor.sink.migrate import (
    MigrationError,
    RenderOptions,
    load_migrations,
    migrate,
    render,
    split_statements,
)

pytestmark = pytest.mark.integration

BUNDLED = Path(str(resources.files("processor.sink") / "migrations"))


@pytest.fixture
def sink(tmp_path: Path):
    sink = ChdbSink(tmp_path / "chdb")
    yield sink
    sink.close()


def table_ddl(sink: ChdbSink, table: str) -> str:
    rows = sink.query(
        "SELECT engine_full AS e FROM system.tables WHERE database = 'audit' AND name = {t:String}",
        {"t": table},
    )
    return str(rows[0]["e"])


def test_migrate_creates_the_upstream_tables_and_is_idempotent(sink: ChdbSink):
    first = migrate(sink)
    assert first.applied == [m.name for m in load_migrations()]
    sink.open()  # verifies the three tables
    second = migrate(sink)
    assert (second.applied, second.skipped) == ([], first.applied)
    recorded = sink.query(
        "SELECT version, name FROM audit.schema_migrations FINAL ORDER BY version"
    )
    assert [r["name"] for r in recorded] == first.applied
    assert "ReplacingMergeTree(reindex_version)" in table_ddl(sink, "activities")
    key = "ORDER BY (toStartOfHour(timestamp), timestamp, tenant_type, tenant_name, origin_id)"
    assert key in table_ddl(sink, "activities")
    assert "non_replicated_deduplication_window = 10000" in table_ddl(sink, "audit_logs")
    assert "ReplacingMergeTree(inserted_at)" in table_ddl(sink, "k8s_events")


def test_skip_indexes_and_projections_exist(sink: ChdbSink):
    migrate(sink)
    indexes = sink.query(
        "SELECT table, name, type FROM system.data_skipping_indices WHERE database = 'audit'"
    )
    names = {(r["table"], r["name"]) for r in indexes}
    assert ("activities", "idx_summary_search") in names  # the ngram text index (26.2+)
    assert ("k8s_events", "idx_related_name_bloom") in names
    assert ("audit_logs", "idx_status_code_minmax") in names
    assert len([n for t, n in names if t == "k8s_events"]) == 23
    projections = sink.query(
        "SELECT table, name FROM system.projections WHERE database = 'audit' ORDER BY table, name"
    )
    assert len(projections) == 12  # upstream's 9 and our 3 query projections (105)
    ours = {"activity_actor_projection", "activity_tenant_kind_projection"}
    ours.add("activity_object_projection")
    assert ours <= {r["name"] for r in projections if r["table"] == "activities"}


def test_checksum_drift_is_an_error_naming_the_file(sink: ChdbSink, tmp_path: Path):
    directory = tmp_path / "migrations"
    shutil.copytree(BUNDLED, directory)
    migrate(sink, directory=directory)
    edited = directory / "102_activities.sql"
    edited.write_text(edited.read_text() + "\n-- edited after it was applied\n")
    with pytest.raises(MigrationError, match=r"102_activities\.sql: checksum"):
        migrate(sink, directory=directory)


def test_a_new_file_is_applied_on_the_next_run(sink: ChdbSink, tmp_path: Path):
    directory = tmp_path / "migrations"
    shutil.copytree(BUNDLED, directory)
    migrate(sink, directory=directory)
    (directory / "200_extra.sql").write_text(
        "-- a later migration\nCREATE TABLE IF NOT EXISTS ${DB}.extra (x UInt8)\n"
        "ENGINE = ${REPLACING}() ORDER BY x;\n"
    )
    result = migrate(sink, directory=directory)
    assert result.applied == ["200_extra"]
    assert sink.query("SELECT count() AS n FROM audit.extra") == [{"n": 0}]


def test_a_failing_statement_names_the_file(sink: ChdbSink, tmp_path: Path):
    directory = tmp_path / "migrations"
    shutil.copytree(BUNDLED, directory)
    (directory / "300_broken.sql").write_text("CREATE TABLE ${DB}.broken (x NoSuchType);\n")
    with pytest.raises(MigrationError, match=r"300_broken\.sql failed"):
        migrate(sink, directory=directory)
    recorded = sink.query("SELECT max(version) AS v FROM audit.schema_migrations")
    last = load_migrations()[-1].version
    assert recorded == [{"v": last}]  # the broken one is not recorded


def test_memory_sink_has_no_schema():
    from processor.sink.memory import MemorySink

    assert migrate(MemorySink()).applied == []


def test_default_rendering_is_single_node():
    sql = "\n".join(s for m in load_migrations() for s in m.render(RenderOptions()))
    assert "Replicated" not in sql
    assert "ON CLUSTER" not in sql
    assert "TO VOLUME" not in sql and "storage_policy" not in sql
    assert "${" not in sql and "--@" not in sql


def test_replicated_and_tiered_rendering():
    options = RenderOptions(replicated=True, storage_policy="hot_cold")
    by_name = {m.name: "\n".join(m.render(options)) for m in load_migrations()}
    database = by_name["100_database"]
    assert "CREATE DATABASE IF NOT EXISTS audit\n    ON CLUSTER 'activity'\n" in database
    assert (
        "ENGINE = Replicated('/clickhouse/activity/databases/audit', '{shard}', '{replica}')"
        in database
    )
    for name in ("101_audit_logs", "102_activities", "103_k8s_events"):
        assert "ENGINE = ReplicatedReplacingMergeTree(" in by_name[name]
    audit = by_name["101_audit_logs"]
    assert "TTL timestamp + INTERVAL 90 DAY TO VOLUME 'cold'" in audit
    assert "storage_policy = 'hot_cold'," in audit
    assert "TO VOLUME" not in by_name["102_activities"]


def test_render_rejects_unknown_placeholders_and_directives():
    with pytest.raises(MigrationError, match=r"unknown placeholder \$\{NOPE\}"):
        render("SELECT ${NOPE};", RenderOptions())
    with pytest.raises(MigrationError, match="unknown directive --@sharded"):
        render("--@sharded x\n", RenderOptions())


def test_split_statements_on_line_end_semicolons():
    sql = "-- header\nCREATE TABLE a (s String DEFAULT ';');\n\n-- only a comment;\nSELECT 1;\n"
    assert split_statements(sql) == ["-- header\nCREATE TABLE a (s String DEFAULT ';')", "SELECT 1"]


def test_cli_migrate_prints_each_migration_and_a_summary(tmp_path, capsys, monkeypatch):
    import argparse

    monkeypatch.delenv("ACTIVITY_CLICKHOUSE_URL", raising=False)
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path))
    parser = argparse.ArgumentParser()
    migrate_command.register(parser.add_subparsers())
    args = parser.parse_args(["migrate"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out.splitlines()
    n = len(load_migrations())
    assert out[:n] == [f"applied {m.name}" for m in load_migrations()]
    assert out[-1] == f"chdb://{tmp_path / 'chdb'}: {n} applied, 0 already applied"
    assert args.handler(args) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"chdb://{tmp_path / 'chdb'}: 0 applied, {n} already applied"
    ]
    sink = ChdbSink(tmp_path / "chdb")
    try:
        sink.open()
        assert {r["name"] for r in sink.query("SHOW TABLES FROM audit")} >= set(TABLES)
    finally:
        sink.close()


def test_cli_dry_run_prints_sql_without_connecting(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    migrate_command.register(parser.add_subparsers())
    target = tmp_path / "never"
    args = parser.parse_args(
        ["migrate", "--dry-run", "--replicated", "--clickhouse-url", f"chdb://{target}"]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "ReplicatedReplacingMergeTree(reindex_version)" in out
    assert "-- 104_activities_summary_text_index" in out
    assert not target.exists()
