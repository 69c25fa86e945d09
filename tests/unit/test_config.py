"""Settings: flags over environment over config file over defaults; validation."""

from __future__ import annotations

import argparse

import pytest

from processor.config import Settings, add_arguments, build_settings


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_without_anything():
    settings = build_settings(_parse([]), environ={})
    assert settings == Settings()


def test_precedence_flag_env_file(tmp_path):
    config = tmp_path / "worker.yaml"
    config.write_text("nats-url: nats://file:4222\npartition_count: 16\nbatch_max_age: 0.5\n")
    env = {"ACTIVITY_NATS_URL": "nats://env:4222", "ACTIVITY_PARTITIONS": "0-3"}
    settings = build_settings(_parse(["--config", str(config), "--partitions", "4-7"]), environ=env)
    assert settings.nats_url == "nats://env:4222"  # env beats file
    assert settings.partition_count == 16  # file beats default
    assert settings.partitions == "4-7"  # flag beats env
    assert settings.batch_max_age == 0.5


def test_ready_max_pending_age_from_flag_and_environment():
    env = {"ACTIVITY_READY_MAX_PENDING_AGE": "45.5"}
    assert build_settings(_parse([]), environ=env).ready_max_pending_age == 45.5
    args = _parse(["--ready-max-pending-age", "300"])
    assert build_settings(args, environ=env).ready_max_pending_age == 300.0
    assert Settings().ready_max_pending_age == 120.0


def test_config_file_from_environment(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("store_raw: true\n")
    settings = build_settings(_parse([]), environ={"ACTIVITY_CONFIG": str(config)})
    assert settings.store_raw is True


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("off", False), ("no", False)]
)
def test_booleans(raw, expected):
    assert build_settings(None, environ={"ACTIVITY_DLQ_ENABLED": raw}).dlq_enabled is expected


def test_lists_from_environment():
    env = {"ACTIVITY_STAGES": "ResponseComplete, Panic", "ACTIVITY_POLICIES": "a:b"}
    settings = build_settings(None, environ=env)
    assert settings.stages == ("ResponseComplete", "Panic")
    assert settings.policies == ("a", "b")


def test_policy_flag_takes_several_paths():
    settings = build_settings(_parse(["--policies", "x", "y"]), environ={})
    assert settings.policies == ("x", "y")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ACTIVITY_PARTITION_COUNT": "many"}, "partition_count: expected int"),
        ({"ACTIVITY_PARTITION_COUNT": "0"}, "partition_count must be at least 1"),
        ({"ACTIVITY_BATCH_MAX_AGE": "0"}, "batch_max_age must be positive"),
        ({"ACTIVITY_READY_MAX_PENDING_AGE": "0"}, "ready_max_pending_age must be positive"),
        (
            {"ACTIVITY_READY_MAX_PENDING_AGE": "2", "ACTIVITY_BATCH_MAX_AGE": "5"},
            "ready_max_pending_age must be greater than batch_max_age",
        ),
        ({"ACTIVITY_STORE_RAW": "maybe"}, "store_raw: expected true or false"),
        (
            {"ACTIVITY_MAX_PENDING_RECORDS": "10", "ACTIVITY_BATCH_MAX_RECORDS": "100"},
            "max_pending_records must be at least batch_max_records",
        ),
    ],
)
def test_invalid_values_are_named(env, message):
    with pytest.raises(ValueError, match=message):
        build_settings(None, environ=env)


def test_unknown_key_in_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("nats_ulr: x\n")
    with pytest.raises(ValueError, match="unknown setting 'nats_ulr'"):
        build_settings(_parse(["--config", str(config)]), environ={})


def test_default_clickhouse_url_is_chdb_in_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ACTIVITY_DATA_DIR", str(tmp_path))
    assert Settings().resolved_clickhouse_url() == f"chdb://{tmp_path / 'chdb'}"


def test_pull_request_bytes_share_the_budget():
    from processor.stream.consumer import PULL_REQUESTS, request_bytes

    mib = 1024 * 1024
    assert request_bytes(4 * mib, 48 * mib, 2) == 4 * mib  # few consumers: the limit holds
    share = request_bytes(4 * mib, 48 * mib, 18)  # 8 partitions of two streams plus shared
    assert share == 48 * mib // (18 * PULL_REQUESTS) and share * 18 * PULL_REQUESTS <= 48 * mib
    assert request_bytes(4 * mib, 1, 18) == 1  # never zero (zero would mean no limit)


def test_sink_nice_setting():
    assert Settings().sink_nice == 19
    assert build_settings(_parse([]), environ={"ACTIVITY_SINK_NICE": "0"}).sink_nice == 0
    for bad in (-1, 20):
        with pytest.raises(ValueError, match="sink_nice must be between 0 and 19"):
            Settings(sink_nice=bad)
