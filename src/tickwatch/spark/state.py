"""Stage 2 of the job: one symbol's ticks through the embedded engine, state kept by Spark.

Spark's own watermark is global (the minimum over all inputs), while DESIGN.md closes windows
on a per-symbol watermark. So the job groups by symbol and runs
`groupBy("symbol").applyInPandasWithState(advance, ...)`: for each symbol with new records in a
micro-batch, `advance` loads that symbol's `tickwatch.engine.Engine` from the group state, feeds
it the new ticks in arrival order, emits what it closed, and stores it back. The engine is the
very code the embedded pipeline runs, so windows, features, baselines, z-scores, severities,
late and duplicate handling are defined once.

Arrival order is (topic, partition, offset): producers key records by symbol, so one symbol's
records sit in one partition in the order they were sent, which is the order the embedded
engine sees them in. The micro-batch boundaries do not matter, since the engine is incremental
per tick.

The state is the pickled engine (open windows with their ticks, duplicate keys of the last
`lookback` windows, the baseline histories). It lives in Spark's checkpointed state store, so a
restart resumes it exactly; a checkpoint is tied to the engine settings it was written with,
and `advance` refuses one written with other settings rather than mixing them.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from pyspark.sql.streaming.state import GroupState

from tickwatch.bus.kafka import encode
from tickwatch.engine import Engine, EngineConfig
from tickwatch.engine.windows import from_micros
from tickwatch.errors import ConfigError
from tickwatch.model import AssetType, Rejected, Tick
from tickwatch.spark.schemas import (
    KIND_ANOMALY,
    KIND_INVALID,
    KIND_LATE,
    KIND_TICK,
    KIND_WINDOW,
    OUTPUT,
    frame,
)

_ORDER = ["topic", "partition", "offset"]


def _tick(row: Any) -> Tick:
    def number(value: Any) -> float | None:
        return None if pd.isna(value) else float(value)

    return Tick(
        source=row.source,
        asset_type=AssetType(row.asset_type),
        symbol=row.symbol,
        event_time=from_micros(int(row.event_us)),
        ingest_time=from_micros(int(row.ingest_us)),
        price=float(row.price),
        volume=number(row.volume),
        open=number(row.open),
        high=number(row.high),
        low=number(row.low),
        close=number(row.close),
    )


def _dead_letter(row: Any) -> Rejected:
    def text(value: Any) -> str | None:
        return None if pd.isna(value) else str(value)

    return Rejected(
        KIND_INVALID,
        row.reason,
        row.payload,
        text(row.dead_source),
        text(row.dead_symbol),
        from_micros(int(row.received_us)),
    )


def _load(state: GroupState, config: EngineConfig, clock: Callable[[], datetime]) -> Engine:
    if not state.exists:
        return Engine(config, clock)
    engine: Engine = pickle.loads(state.get[0])
    if engine.config != config:
        raise ConfigError(
            f"the Spark checkpoint was written with engine settings {engine.config}, not "
            f"{config}; start the job with a new checkpoint folder to use new settings"
        )
    engine.clock = clock
    return engine


def make_advance(
    config: EngineConfig, clock: Callable[[], datetime]
) -> Callable[[tuple[Any, ...], Iterator[pd.DataFrame], GroupState], Iterator[pd.DataFrame]]:
    """The applyInPandasWithState function for `config`; `clock` stamps `detected_at`."""

    def advance(
        key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        symbol = str(key[0])
        batch = pd.concat(list(frames), ignore_index=True).sort_values(_ORDER, kind="stable")
        rows: list[tuple[str, str, str | None, bytes]] = []
        ticks: list[Tick] = []
        for row in batch.itertuples(index=False):
            if row.kind == KIND_TICK:
                tick = _tick(row)
                ticks.append(tick)
                rows.append((KIND_TICK, symbol, None, pickle.dumps(tick)))
            else:
                rows.append((KIND_INVALID, symbol, None, pickle.dumps(_dead_letter(row))))
        if ticks:
            engine = _load(state, config, clock)
            out = engine.process(ticks)
            for window in out.windows:
                data = pickle.dumps(window)
                rows.append((KIND_WINDOW, symbol, encode(window).decode(), data))
            for anomaly in out.anomalies:
                data = pickle.dumps(anomaly)
                rows.append((KIND_ANOMALY, symbol, encode(anomaly).decode(), data))
            for late in out.late:
                rows.append((KIND_LATE, symbol, None, pickle.dumps(late)))
            state.update((pickle.dumps(engine),))
        yield frame(rows, OUTPUT)

    return advance
