"""``--kafka-compression``: the codec of the Kafka producers' batches, for the workers and the
ingest alike (flag over ``ACTIVITY_KAFKA_COMPRESSION`` over the config file over zstd), and a bad
value named with the choices."""

from __future__ import annotations

import argparse

import pytest

from processor import config
from processor.ingest import settings as ingest
from processor.kafka.produce import new_producer
from processor.kafka.settings import COMPRESSIONS, DEFAULT_COMPRESSION, KafkaSettings


def _worker(argv: list[str], environ: dict[str, str]) -> config.Settings:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.build_settings(parser.parse_args(argv), environ=environ)


def _ingest(argv: list[str], environ: dict[str, str]) -> ingest.IngestSettings:
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    args = parser.parse_args(["--kafka-brokers", "kafka:9092", *argv])
    return ingest.build_ingest_settings(args, environ=environ)


def test_the_default_is_zstd_everywhere() -> None:
    assert DEFAULT_COMPRESSION == "zstd"
    assert _worker([], {}).kafka().compression == "zstd"
    assert _ingest([], {}).kafka().compression == "zstd"
    assert KafkaSettings().compression == "zstd"


def test_flag_over_environment_over_file(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "worker.yaml"  # type: ignore[operator]
    path.write_text("kafka-compression: gzip\n")
    assert _worker(["--config", str(path)], {}).kafka().compression == "gzip"
    env = {"ACTIVITY_KAFKA_COMPRESSION": "lz4"}
    assert _worker(["--config", str(path)], env).kafka().compression == "lz4"
    flag = ["--config", str(path), "--kafka-compression", "none"]
    assert _worker(flag, env).kafka().compression == "none"


def test_the_ingest_reads_the_workers_variable() -> None:
    """One deployment setting: the ingest and the workers read ``ACTIVITY_KAFKA_COMPRESSION``."""
    env = {"ACTIVITY_KAFKA_COMPRESSION": "snappy"}
    assert _ingest([], env).kafka().compression == "snappy"
    assert _ingest(["--kafka-compression", "gzip"], env).kafka().compression == "gzip"


@pytest.mark.parametrize("build", [_worker, _ingest])
def test_an_unknown_codec_is_named_with_the_choices(build: object) -> None:
    with pytest.raises(ValueError, match=r"kafka_compression must be one of none, gzip, snappy, "
                       r"lz4, zstd, got 'brotli'"):  # fmt: skip
        build(["--kafka-compression", "brotli"], {})  # type: ignore[operator]


def test_kafka_settings_and_the_producer_refuse_an_unknown_codec() -> None:
    with pytest.raises(ValueError, match="compression must be one of"):
        KafkaSettings(compression="LZ4")
    with pytest.raises(ValueError, match="compression must be one of"):
        new_producer("127.0.0.1:1", "brotli")


@pytest.mark.parametrize("codec", COMPRESSIONS)
def test_every_codec_has_its_library(codec: str) -> None:
    """aiokafka checks at construction that the codec's library (cramjam, gzip) is installed."""
    import asyncio

    async def build() -> object:
        producer = new_producer("127.0.0.1:1", codec)
        await producer.stop()  # never started: no connection
        return producer._compression_type  # the codec it sends

    assert asyncio.run(build()) == (None if codec == "none" else codec)
