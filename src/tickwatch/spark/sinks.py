"""Stage 3 of the job: each micro-batch to PostgreSQL, the Parquet lake and the output topics.

`BatchSink` is the `foreachBatch` function. The driver only plans: every row is written where
it was computed, on the executors, and none is brought to the driver.

- Store: `StoreWriter` runs in `foreachPartition`, each partition's windows, anomalies and dead
  letters through `tickwatch.store.SqlStore.write`, the upserts the embedded pipeline uses
  (`INSERT ... ON CONFLICT` on the keys of DESIGN.md), plus the sources of its ticks to the
  store's provenance table (`tickwatch.store.provenance`), so /api/meta and /health say
  simulated when the simulator fed the stack. Spark's JDBC writer is not used: it can only
  append or overwrite, and an append replayed after a crash would duplicate rows.
- Lake: Spark's own Parquet writer appends raw ticks and clean rows under the embedded lake's
  layout (`LAKE/<table>/date=YYYY-MM-DD/part-*.parquet`, same columns), which
  `tickwatch.store.ParquetLake` reads; a re-run batch adds files whose rows the lake's
  latest-per-key rule folds away. The tick rows carry their `source`; they reach the sink as
  one blob per bucket (raw_ticks.py), which `mapInArrow` expands before the Parquet writer.
- Topics: clean rows to `clean_market_data`, anomalies to `market_anomalies` (key = symbol,
  value = the row's JSON, as `tickwatch.bus.kafka.encode` writes it), with Spark's Kafka sink.

The store's pass computes the batch into the persisted frame; the lake and topic writes then
read it side by side, one job each from its own driver thread (the lake's are a task each).

Exactly once where it matters: Spark re-runs a batch whose commit did not reach the checkpoint
with the same data, and the upserts make the second write a no-op. The topics are at least
once: a re-run batch may publish its rows again, with the same keys and values, so a consumer
that upserts by (symbol, window_start[, anomaly_type]) sees no difference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark import Accumulator
from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.util import inheritable_thread_target

from tickwatch.clock import from_micros
from tickwatch.model import (
    CLEAN_COLUMNS,
    CLEAN_MARKET_DATA,
    MARKET_ANOMALIES,
    Anomaly,
    AnomalyType,
    AssetType,
    Rejected,
    Severity,
)
from tickwatch.spark import raw_ticks
from tickwatch.spark.schemas import (
    KIND_ANOMALY,
    KIND_SOURCE,
    KIND_TICKS,
    KIND_WINDOW,
)
from tickwatch.store import SqlStore, provenance
from tickwatch.store.parquet import RAW_TICKS, SCHEMAS

log = logging.getLogger(__name__)

_TIMES = {"window_start": "window_start_us", "window_end": "window_end_us"}
_STORES: dict[str, SqlStore] = {}  # one per Python worker and URL: workers are reused
_RECORDED: set[str] = set()  # sources this worker already wrote to the provenance table


def _store(url: str) -> SqlStore:
    if url not in _STORES:
        _STORES[url] = SqlStore(url)
    return _STORES[url]


class StoreWriter:
    """The foreachPartition function: one partition's result rows, upserted in one call."""

    def __init__(self, url: str, counts: dict[str, Accumulator[int]]) -> None:
        self.url = url
        self.counts = counts

    def __call__(self, rows: Iterator[Row]) -> None:
        windows: list[dict[str, Any]] = []
        anomalies: list[Anomaly] = []
        letters: list[Rejected] = []
        sources: set[str] = set()
        for row in rows:
            if row.kind == KIND_WINDOW:
                windows.append(_window(row))
            elif row.kind == KIND_ANOMALY:
                anomalies.append(_anomaly(row))
            elif row.kind == KIND_SOURCE:
                sources.add(row.source)
            else:  # late or invalid
                letters.append(_letter(row))
        store = _store(self.url)
        table = pa.Table.from_pylist(windows, schema=SCHEMAS[CLEAN_MARKET_DATA])
        store.write(table, anomalies, letters)
        if sources - _RECORDED:
            provenance.record(store.engine, sources)
            _RECORDED.update(sources)
        for name, n in (("windows", len(windows)), ("anomalies", len(anomalies))):
            self.counts[name].add(n)
        self.counts["dead_letters"].add(len(letters))


def _window(row: Row) -> dict[str, Any]:
    values = {name: row[_TIMES.get(name, name)] for name in CLEAN_COLUMNS}
    for name in _TIMES:
        values[name] = from_micros(values[name])
    return values


def _anomaly(row: Row) -> Anomaly:
    return Anomaly(
        row.symbol,
        AssetType(row.asset_type),
        from_micros(row.window_start_us),
        from_micros(row.window_end_us),
        AnomalyType(row.anomaly_type),
        row.value,
        row.mean,
        row.std,
        row.z_score,
        Severity(row.severity),
        from_micros(row.detected_us),
    )


def _letter(row: Row) -> Rejected:
    return Rejected(
        row.kind,
        row.reason,
        row.payload,
        row.source,
        row.letter_symbol,
        from_micros(row.received_us),
    )


def _time(name: str, micros: str) -> Column:
    return F.timestamp_micros(F.col(micros)).alias(name)


class BatchSink:
    def __init__(
        self,
        store_url: str,
        lake: Path | None,
        bootstrap_servers: str | None,
        topic_prefix: str = "",
    ) -> None:
        self.store_url = store_url
        self.lake = lake
        self.bootstrap_servers = bootstrap_servers
        self.topic_prefix = topic_prefix

    def __call__(self, frame: DataFrame, batch_id: int) -> None:
        frame.persist()
        try:
            self._write(frame, batch_id)
        finally:
            frame.unpersist()

    def _write(self, frame: DataFrame, batch_id: int) -> None:
        context = frame.sparkSession.sparkContext
        counts = {name: context.accumulator(0) for name in ("windows", "anomalies", "dead_letters")}
        # this job computes the batch (and the state) once, into the persisted frame ...
        frame.where(F.col("kind") != KIND_TICKS).foreachPartition(
            StoreWriter(self.store_url, counts)
        )
        # ... which the other writes read at the same time, each a job of its own: the lake's
        # one-file writes are a task each, so they use the cores side by side
        writes: list[Callable[[], None]] = []
        if self.lake is not None:
            writes += self._lake(frame, self.lake)
        if self.bootstrap_servers is not None and counts["windows"].value:
            writes.append(lambda: self._publish(frame))
        with ThreadPoolExecutor(max(1, len(writes))) as pool:
            # the threads' jobs keep the batch's job group and properties: query.stop cancels them
            inherit = inheritable_thread_target(frame.sparkSession)
            jobs = [pool.submit(inherit(write)) for write in writes]
            for done in jobs:
                done.result()  # a failed write fails the batch, which Spark then re-runs
        log.info(
            "batch %d: %d windows, %d anomalies, %d dead letters",
            batch_id,
            counts["windows"].value,
            counts["anomalies"].value,
            counts["dead_letters"].value,
        )

    @staticmethod
    def _lake(frame: DataFrame, lake: Path) -> list[Callable[[], None]]:
        ticks = (
            frame.where(F.col("kind") == KIND_TICKS)
            .select("ticks")
            .mapInArrow(raw_ticks.unpack, raw_ticks.SPARK)
            .withColumn("date", F.to_date("event_time"))
        )
        clean = frame.where(F.col("kind") == KIND_WINDOW).select(
            *(
                _time(name, _TIMES[name]) if name in _TIMES else F.col(name)
                for name in CLEAN_COLUMNS
            ),
            F.to_date(F.timestamp_micros("window_start_us")).alias("date"),
        )
        # one file per day and batch: the micro-batch is already computed (persisted)
        return [
            partial(
                rows.coalesce(1).write.mode("append").partitionBy("date").parquet,
                str(lake / table),
            )
            for rows, table in ((ticks, RAW_TICKS), (clean, CLEAN_MARKET_DATA))
        ]

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
