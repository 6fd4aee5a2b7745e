"""Parity: the real Spark job over the real broker writes the embedded engine's rows.

A known tick stream (tests/integration/spark_stream.py) goes into Kafka; the Structured
Streaming job runs in local[2] until it has read everything (trigger availableNow); PostgreSQL
then holds row for row what `tickwatch.processor.Processor` computes from the same bytes:
clean windows, anomalies (detected_at aside) and dead letters (received_at aside).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from pyspark.sql import SparkSession

from tests.integration.spark_stream import assert_same_rows, embedded, produce, tick_stream
from tickwatch.model import CLEAN_MARKET_DATA, MARKET_ANOMALIES
from tickwatch.sources.simulate import SOURCE_NAME as SIMULATOR
from tickwatch.spark.job import JobConfig, build_session, start
from tickwatch.store import ParquetLake, SqlStore, provenance
from tickwatch.store.parquet import RAW_TICKS

pytestmark = [pytest.mark.spark, pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = build_session("local[2]", "tickwatch-parity", ui=False)
    yield session
    session.stop()


def _topic_keys(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    keys: list[bytes] = []
    for _ in range(60):
        for message in consumer.consume(500, timeout=1.0):
            if message.error() is None:
                keys.append(message.key() or b"")
        if len(keys) >= expected:
            break
    consumer.close()
    return keys


def test_spark_job_writes_the_embedded_engines_rows(
    spark: SparkSession, kafka_bootstrap: str, postgres_db: str, tmp_path: Path
) -> None:
    messages = tick_stream()
    produce(kafka_bootstrap, "parity.", messages)
    expected, processor = embedded(messages, tmp_path)
    counters = processor.counters
    # the stream exercises every path it claims to
    assert counters.anomaly_total >= 3 and counters.windows >= 90
    assert (counters.duplicates, counters.late, counters.rejected) == (2, 1, 2)

    config = JobConfig(
        bootstrap_servers=kafka_bootstrap,
        store_url=postgres_db,
        checkpoint=tmp_path / "checkpoint",
        lake=tmp_path / "lake",
        topic_prefix="parity.",
        shuffle_partitions=2,
    )
    query = start(spark, config, available_now=True)
    query.awaitTermination(timeout=300)
    assert query.exception() is None

    counts = assert_same_rows(SqlStore(postgres_db), expected)
    assert counts["dead_letters"] == 3  # two invalid records and one late tick

    lake = ParquetLake(tmp_path / "lake")
    assert lake.read(CLEAN_MARKET_DATA).num_rows == counts[CLEAN_MARKET_DATA]
    # every valid tick once: all messages but the two invalid ones and the two duplicates
    ticks = lake.read(RAW_TICKS)
    assert ticks.num_rows == len(messages) - 4
    # provenance: the simulator's name travels with each tick to the lake, and the store
    # says simulated (what /api/meta and /health read)
    assert set(ticks["source"].to_pylist()) == {SIMULATOR}
    assert provenance.sources(SqlStore(postgres_db).engine) == {SIMULATOR: provenance.SIMULATED}
    anomalies = _topic_keys(kafka_bootstrap, "parity." + MARKET_ANOMALIES, counts[MARKET_ANOMALIES])
    assert len(anomalies) == counts[MARKET_ANOMALIES]
    clean = _topic_keys(kafka_bootstrap, "parity." + CLEAN_MARKET_DATA, counts[CLEAN_MARKET_DATA])
    assert len(clean) == counts[CLEAN_MARKET_DATA]
    assert set(clean) == {b"AAPL", b"bitcoin", b"ethereum"}
