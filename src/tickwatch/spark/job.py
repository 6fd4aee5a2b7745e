"""The PySpark Structured Streaming job: raw topics in, the embedded engine's rows out.

    Kafka raw_stock_ticks, raw_crypto_ticks
      → validate (parse.py, mapInArrow): tickwatch's own validator, a chunk at a time as
        columns; invalid → dead letters
      → groupBy(bucket of symbols).applyInPandasWithState (state.py): the columnar engine on
        each bucket's whole micro-batch, per-symbol watermark, late ticks → dead letters,
        duplicates counted once; the state is a versioned schema of arrays, no pickles
      → foreachBatch (sinks.py): PostgreSQL upserts from the executors (foreachPartition),
        Spark's Parquet writer for the lake, Spark's Kafka sink for clean_market_data and
        market_anomalies; no row goes to the driver

One query, one checkpoint folder: the Kafka offsets of each micro-batch, the per-symbol engine
state and the commit log live there, so a restart (after a crash or a stop) resumes at the first
uncommitted batch, re-runs it with the same input, and the idempotent sinks absorb the re-run.
The checkpoint also fixes the number of state partitions (`shuffle_partitions`) and of symbol
buckets (`buckets`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery
from pyspark.sql.streaming.state import GroupStateTimeout

from tickwatch.bus.kafka import TOPICS, ensure_topics
from tickwatch.clock import utc_now
from tickwatch.config import Settings
from tickwatch.engine import EngineConfig
from tickwatch.errors import ConfigError
from tickwatch.model import RAW_CRYPTO_TICKS, RAW_STOCK_TICKS
from tickwatch.spark.jars import resolve_jars
from tickwatch.spark.parse import validate_batches
from tickwatch.spark.progress import checkpoint_dir, write_heartbeat
from tickwatch.spark.schemas import OUTPUT, STATE, VALIDATED
from tickwatch.spark.sinks import BatchSink
from tickwatch.spark.state import make_advance
from tickwatch.store import SqlStore

log = logging.getLogger(__name__)
ARROW_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class JobConfig:
    """Where the job reads and writes, and how it paces itself."""

    bootstrap_servers: str
    store_url: str
    checkpoint: Path
    lake: Path | None = None
    engine: EngineConfig = field(default_factory=EngineConfig)
    max_clock_skew: timedelta = timedelta(minutes=5)
    topic_prefix: str = ""
    publish: bool = True  # write results back to the output topics
    trigger_seconds: float = 10.0
    max_offsets_per_trigger: int | None = None
    shuffle_partitions: int = 4
    buckets: int = 16  # groups of symbols sharing one state row (fixed by the checkpoint)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> JobConfig:
        """Kafka, store and engine from the settings; checkpoint DATA_DIR/checkpoints/spark."""
        config = cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            store_url=settings.database_url,
            checkpoint=checkpoint_dir(settings.data_dir),
            lake=settings.data_dir / "lake",
            engine=settings.engine_config(),
            max_clock_skew=settings.max_clock_skew,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def build_session(
    master: str | None = "local[*]",
    app_name: str = "tickwatch",
    ui: bool = True,
    jars: list[Path] | None = None,
) -> SparkSession:
    """A SparkSession with the Kafka connector and JDBC driver as local jar files.

    `jars` defaults to `resolve_jars()` (Maven, cached); pass [] under spark-submit, whose
    `--jars` already supplies them. `master` None leaves the choice to spark-submit.
    """
    jar_list = resolve_jars() if jars is None else jars
    builder = SparkSession.builder.appName(app_name)
    if master is not None:
        builder = builder.master(master)
    if jar_list:
        builder = builder.config("spark.jars", ",".join(str(jar) for jar in jar_list))
    # Python workers run this interpreter (tickwatch importable) unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", str(ui).lower())
        .getOrCreate()
    )


def raw_topics(prefix: str = "") -> list[str]:
    return [prefix + RAW_STOCK_TICKS, prefix + RAW_CRYPTO_TICKS]


def build_stream(
    spark: SparkSession, config: JobConfig, clock: Callable[[], datetime] = utc_now
) -> DataFrame:
    """The streaming DataFrame of OUTPUT rows (before the sinks)."""
    spark.conf.set("spark.sql.shuffle.partitions", str(config.shuffle_partitions))
    # Arrow batches to and from the Python stages as large as a micro-batch's share of a
    # partition (Spark's default, 10,000 rows, splits them into many small calls)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.bootstrap_servers)
        .option("subscribe", ",".join(raw_topics(config.topic_prefix)))
        .option("startingOffsets", "earliest")
    )
    if config.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
    raw = reader.load().select(
        "value", "topic", "partition", "offset", F.unix_micros("timestamp").alias("received_us")
    )
    validated = raw.mapInArrow(validate_batches(config.max_clock_skew), VALIDATED)
    bucket = F.pmod(F.hash("symbol"), F.lit(config.buckets))
    return (
        validated.withColumn("bucket", bucket)
        .groupBy("bucket")
        .applyInPandasWithState(
            make_advance(config.engine, config.buckets, clock),
            outputStructType=OUTPUT,
            stateStructType=STATE,
            outputMode="append",
            timeoutConf=GroupStateTimeout.NoTimeout,
        )
    )


def start(
    spark: SparkSession,
    config: JobConfig,
    *,
    available_now: bool = False,
    clock: Callable[[], datetime] = utc_now,
) -> StreamingQuery:
    """Start the query. `available_now` processes what the topics hold, then stops."""
    if config.engine.detector != "zscore":  # refused here, not later on every executor
        raise ConfigError(
            f"DETECTOR={config.engine.detector}: the Spark job runs DETECTOR=zscore only (its "
            "state keeps each symbol's last windows, not the seasonal profiles, and robust is not "
            "held to the embedded engine there yet); use the embedded engine for other detectors"
        )
    if config.publish:
        _ensure_output_topics(config)
    store = SqlStore(config.store_url)  # creates the tables once, before the executors write
    # the lake's timestamps as Parquet's microsecond type, which pyarrow reads as UTC times
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    sink = BatchSink(
        config.store_url,
        config.lake,
        config.bootstrap_servers if config.publish else None,
        config.topic_prefix,
    )
    writer = (
        build_stream(spark, config, clock)
        .writeStream.queryName("tickwatch")
        .option("checkpointLocation", str(config.checkpoint))
        .foreachBatch(sink)
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{config.trigger_seconds} seconds")
    query = writer.start()
    log.info(
        "Spark job started: topics %s on %s → %s, checkpoint %s",
        raw_topics(config.topic_prefix),
        config.bootstrap_servers,
        store.engine_url_masked,
        config.checkpoint,
    )
    return query


def _ensure_output_topics(config: JobConfig) -> None:
    admin = AdminClient({"bootstrap.servers": config.bootstrap_servers})
    ensure_topics(admin, TOPICS, config.topic_prefix)


def run(
    config: JobConfig,
    master: str | None = "local[*]",
    available_now: bool = False,
    jars: list[Path] | None = None,
) -> None:
    """Run the job until it is stopped (or, with `available_now`, until the topics are read)."""
    spark = build_session(master, jars=jars)
    query = start(spark, config, available_now=available_now)
    try:
        keep_alive(query, config)
    finally:
        if query.isActive:
            query.stop()
        spark.stop()


def keep_alive(
    query: StreamingQuery, config: JobConfig, clock: Callable[[], datetime] = utc_now
) -> None:
    """Wait for the query to end, writing the heartbeat (tickwatch.spark.progress) once per
    trigger interval while it is active, so the checks tell a quiet job from a dead one."""
    while query.isActive:
        progress = query.lastProgress
        batch = None if progress is None else int(progress.batchId)
        write_heartbeat(config.checkpoint, config.trigger_seconds, batch, clock())
        # PySpark takes fractional seconds here (it converts to ms); its stub says int
        if query.awaitTermination(config.trigger_seconds):  # type: ignore[arg-type]
            break
    query.awaitTermination()  # raises the query's exception when it failed
