"""Stage 3 of the job: each micro-batch to PostgreSQL, the Parquet lake and the output topics.

`BatchSink` is the `foreachBatch` function. It runs on the driver: a micro-batch's output is
small (one row per symbol-window, one per anomaly, the batch's ticks and dead letters), while
parsing and the per-symbol state run on the executors.

- Store: `tickwatch.store.SqlStore.write`, the upserts the embedded pipeline uses (keys from
  DESIGN.md), over psycopg. Spark's JDBC writer is not used for this: it can only append or
  overwrite, and an append replayed after a crash would duplicate rows.
- Lake: `tickwatch.store.ParquetLake` (raw ticks and clean rows by UTC date, the same layout as
  the embedded lake); a replayed batch adds a file whose rows the lake's latest-per-key rule
  folds away, and partitions are compacted every `compact_every` batches.
- Topics: clean rows to `clean_market_data`, anomalies to `market_anomalies` (key = symbol,
  value = the row's JSON, as `tickwatch.bus.kafka.encode` writes it), with Spark's Kafka sink.

Exactly once where it matters: Spark re-runs a batch whose commit did not reach the checkpoint
with the same data, and the upserts make the second write a no-op. The topics are at least
once: a re-run batch may publish its rows again, with the same keys and values, so a consumer
that upserts by (symbol, window_start[, anomaly_type]) sees no difference.
"""

from __future__ import annotations

import logging
import pickle

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tickwatch.model import CLEAN_MARKET_DATA, MARKET_ANOMALIES, Anomaly, Rejected, Tick, Window
from tickwatch.spark.schemas import (
    KIND_ANOMALY,
    KIND_INVALID,
    KIND_LATE,
    KIND_TICK,
    KIND_WINDOW,
)
from tickwatch.store import ParquetLake, SqlStore

log = logging.getLogger(__name__)


class BatchSink:
    def __init__(
        self,
        store: SqlStore,
        lake: ParquetLake | None,
        bootstrap_servers: str | None,
        topic_prefix: str = "",
        compact_every: int = 30,
    ) -> None:
        self.store = store
        self.lake = lake
        self.bootstrap_servers = bootstrap_servers
        self.topic_prefix = topic_prefix
        self.compact_every = compact_every

    def __call__(self, frame: DataFrame, batch_id: int) -> None:
        frame.persist()
        try:
            self._write(frame, batch_id)
        finally:
            frame.unpersist()

    def _write(self, frame: DataFrame, batch_id: int) -> None:
        windows: list[Window] = []
        anomalies: list[Anomaly] = []
        rejected: list[Rejected] = []
        ticks: list[Tick] = []
        for row in frame.select("kind", "data").collect():
            item = pickle.loads(row["data"])
            if row["kind"] == KIND_WINDOW:
                windows.append(item)
            elif row["kind"] == KIND_ANOMALY:
                anomalies.append(item)
            elif row["kind"] in (KIND_INVALID, KIND_LATE):
                rejected.append(item)
            elif row["kind"] == KIND_TICK:
                ticks.append(item)
        self.store.write(windows, anomalies, rejected)
        if self.lake is not None:
            self.lake.write_ticks(ticks)
            self.lake.write_windows(windows)
            if batch_id % self.compact_every == 0:
                self.lake.compact_all()
            else:
                self.lake.flush()
        if self.bootstrap_servers is not None and (windows or anomalies):
            self._publish(frame)
        log.info(
            "batch %d: %d ticks, %d windows, %d anomalies, %d dead letters",
            batch_id,
            len(ticks),
            len(windows),
            len(anomalies),
            len(rejected),
        )

    def _publish(self, frame: DataFrame) -> None:
        topic = F.when(
            F.col("kind") == KIND_WINDOW, F.lit(self.topic_prefix + CLEAN_MARKET_DATA)
        ).otherwise(F.lit(self.topic_prefix + MARKET_ANOMALIES))
        (
            frame.where(F.col("kind").isin(KIND_WINDOW, KIND_ANOMALY))
            .select(
                F.col("symbol").alias("key"), F.col("json").alias("value"), topic.alias("topic")
            )
            .write.format("kafka")
            .option("kafka.bootstrap.servers", self.bootstrap_servers)
            .option("kafka.acks", "all")
            .save()
        )
