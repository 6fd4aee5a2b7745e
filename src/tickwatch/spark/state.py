"""Stage 2 of the job: one symbol's ticks through the columnar engine, state kept by Spark.

Spark's own watermark is global (the minimum over all inputs), while DESIGN.md closes windows
on a per-symbol watermark. So the job groups by symbol and runs
`groupBy("symbol").applyInPandasWithState(advance, ...)`: for each symbol with new records in a
micro-batch, `advance` rebuilds that symbol's `ColumnarEngine` from the group state, feeds it
the batch's ticks as one column batch in arrival order, emits what it closed and stores the
state back. The engine is the very code `tickwatch replay` runs, so windows, features,
baselines, z-scores, severities, late and duplicate handling are defined once.

Arrival order is (topic, partition, offset): producers key records by symbol, so one symbol's
records sit in one partition in the order they were sent, which is the order the embedded
engine sees them in. Micro-batch boundaries do not matter: the engine's result over a batch
equals its result tick by tick.

**State** (schemas.STATE, version `STATE_VERSION`) is plain columns and arrays, no pickled
class: the engine settings it was built with, the largest event time and the watermark of the
last window close, the last `lookback` completed windows' three features, the ticks of the
open windows, and the (source, event time) keys of recently closed windows that make a late
repeat a duplicate. It lives in Spark's checkpointed state store, so a restart resumes it
exactly. A state of an older version is upgraded by `_UPGRADES` when read; a newer one, or one
built with other window, lateness or lookback settings, is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd  # type: ignore[import-untyped]
from pyspark.sql.streaming.state import GroupState

from tickwatch.engine import EngineConfig
from tickwatch.engine.batch import ASSET_TYPES, TickBatch
from tickwatch.engine.columnar import _OPEN_COLUMNS, NONE, ColumnarEngine, ColumnarOutput
from tickwatch.engine.windows import micros
from tickwatch.errors import ConfigError
from tickwatch.model import Anomaly, AssetType, Feature, Window
from tickwatch.spark.schemas import (
    KIND_ANOMALY,
    KIND_INVALID,
    KIND_SOURCE,
    KIND_TICK,
    KIND_WINDOW,
    OUTPUT,
    STATE,
    STATE_VERSION,
    TICK_NUMBERS,
    frame,
)

_ORDER = ["topic", "partition", "offset"]
_TICK_COLUMNS = ("symbol", "asset_type", "source", "event_us", "ingest_us", *TICK_NUMBERS)
# How a state of an older version becomes the next version's row (none yet: version 1 is the
# first state without pickles).
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def settings_text(config: EngineConfig) -> str:
    """The engine settings a state depends on (the scoring thresholds may change freely)."""
    return (
        f"window_us={config.window.total_seconds() * 1e6:.0f} "
        f"lateness_us={config.allowed_lateness.total_seconds() * 1e6:.0f} "
        f"lookback={config.lookback}"
    )


def _f8(values: Any) -> bytes:
    return np.asarray(values, "<f8").tobytes()


def _i8(values: Any) -> bytes:
    return np.asarray(values, "<i8").tobytes()


def _floats(data: bytes) -> Any:
    return np.frombuffer(data, "<f8").astype(np.float64)


def _ints(data: bytes) -> Any:
    return np.frombuffer(data, "<i8").astype(np.int64)


def snapshot(engine: ColumnarEngine, symbol: str) -> tuple[Any, ...]:
    """The STATE row of `symbol` (the engine's only symbol, index 0)."""
    sources = np.asarray(engine.sources, dtype=object)
    o = engine._open
    _, seen_src, seen_event = engine._kept_arrays(None)
    top, close = int(engine._max[0]), int(engine._wm_close[0])
    row: dict[str, Any] = {
        "version": STATE_VERSION,
        "settings": settings_text(engine.config),
        "asset_type": ASSET_TYPES[engine._asset[0]].value,
        "max_event_us": None if top == NONE else top,
        "close_watermark_us": None if close == NONE else close,
        **{f"history_{f.value}": _f8(engine._history[0, k]) for k, f in enumerate(Feature)},
        "open_source": orjson.dumps(sources[o["src"]].tolist()).decode(),
        "open_event_us": _i8(o["event"]),
        "open_ingest_us": _i8(o["ingest"]),
        **{f"open_{n}": _f8(o[n]) for n in TICK_NUMBERS},
        "seen_source": orjson.dumps(sources[seen_src].tolist()).decode(),
        "seen_event_us": _i8(seen_event),
    }
    return tuple(row[name] for name in STATE.fieldNames())


def restore(
    values: tuple[Any, ...] | None,
    symbol: str,
    asset_type: str,
    config: EngineConfig,
    clock: Callable[[], datetime],
) -> ColumnarEngine:
    """A one-symbol engine resumed from a STATE row (a fresh one when `values` is None)."""
    engine = ColumnarEngine(config, clock)
    if values is None:
        engine._symbol_id(symbol, ASSET_TYPES.index(AssetType(asset_type)))
        return engine
    row = _upgraded(dict(zip(STATE.fieldNames(), values, strict=True)))
    if row["settings"] != settings_text(config):
        raise ConfigError(
            f"the Spark checkpoint's state of {symbol!r} was built with {row['settings']}, "
            f"not {settings_text(config)}; start the job with a new checkpoint folder to use "
            "new window, lateness or lookback settings"
        )
    engine._symbol_id(symbol, ASSET_TYPES.index(AssetType(row["asset_type"])))
    for value, target in (
        (row["max_event_us"], engine._max),
        (row["close_watermark_us"], engine._wm_close),
    ):
        target[0] = NONE if value is None else int(value)
    for k, feature in enumerate(Feature):
        engine._history[0, k] = _floats(row[f"history_{feature.value}"])
    open_sources, seen_sources = orjson.loads(row["open_source"]), orjson.loads(row["seen_source"])
    for name in [*open_sources, *seen_sources]:
        engine._source_id(name)
    index = engine._src_index

    def codes(values: list[str]) -> Any:
        return np.fromiter((index[v] for v in values), np.int32, len(values))

    opened: dict[str, Any] = {
        "sym": np.zeros(len(open_sources), np.int32),
        "src": codes(open_sources),
        "event": _ints(row["open_event_us"]),
        "ingest": _ints(row["open_ingest_us"]),
        **{c: _floats(row[f"open_{c}"]) for c in TICK_NUMBERS},
    }
    engine._open = {c: opened[c] for c in _OPEN_COLUMNS}
    seen = _ints(row["seen_event_us"])
    if len(seen):
        engine._kept = [(np.zeros(len(seen), np.int32), codes(seen_sources), seen)]
        engine._kept_rows = engine._kept_floor = len(seen)
    return engine


def _upgraded(row: dict[str, Any]) -> dict[str, Any]:
    version = int(row["version"])
    if version > STATE_VERSION:
        raise ConfigError(
            f"the Spark checkpoint holds state version {version}, written by a newer tickwatch "
            f"(this one reads up to {STATE_VERSION}); run that release or a new checkpoint folder"
        )
    while version < STATE_VERSION:
        row = _UPGRADES[version](row)
        version = int(row["version"])
    return row


def _batch(ticks: pd.DataFrame, symbol: str) -> TickBatch:
    sources, source_code = np.unique(ticks["source"].to_numpy(object), return_inverse=True)
    n = len(ticks)

    def floats(name: str) -> Any:
        return ticks[name].to_numpy(np.float64, na_value=np.nan)

    return TickBatch(
        symbols=[symbol],
        sources=[str(s) for s in sources],
        symbol_code=np.zeros(n, np.int32),
        source_code=source_code.astype(np.int32),
        asset_code=(ticks["asset_type"].to_numpy(object) == AssetType.CRYPTO.value).astype(np.int8),
        event=ticks["event_us"].to_numpy(np.int64),
        ingest=ticks["ingest_us"].to_numpy(np.int64),
        **{name: floats(name) for name in TICK_NUMBERS},
    )


def _row(kind: str, item: Window | Anomaly) -> dict[str, Any]:
    """A window's or an anomaly's OUTPUT row: its store columns, times in microseconds, and
    its JSON as `tickwatch.bus.kafka.encode` writes it for the output topics."""
    row = item.as_row()
    times = {
        f"{name}_us": micros(value) for name, value in row.items() if isinstance(value, datetime)
    }
    if "detected_at_us" in times:
        times["detected_us"] = times.pop("detected_at_us")
    return {**row, **times, "kind": kind, "json": orjson.dumps(row).decode()}


def _results(result: ColumnarOutput, symbol: str) -> list[dict[str, Any]]:
    """Windows, anomalies and late ticks of `result` as OUTPUT rows."""
    out = result.to_engine_output()
    rows = [_row(KIND_WINDOW, w) for w in out.windows]
    rows += [_row(KIND_ANOMALY, a) for a in out.anomalies]
    for late in out.late:
        rows.append(
            {
                "kind": late.kind,
                "symbol": symbol,
                "reason": late.reason,
                "payload": late.payload,
                "source": late.source,
                "letter_symbol": late.symbol,
                "received_us": micros(late.received_at),
            }
        )
    return rows


def _dead_letters(invalid: pd.DataFrame, symbol: str) -> pd.DataFrame:
    columns = {
        "kind": [KIND_INVALID] * len(invalid),
        "symbol": [symbol] * len(invalid),
        "reason": invalid["reason"].tolist(),
        "payload": invalid["payload"].tolist(),
        "source": invalid["dead_source"].tolist(),
        "letter_symbol": invalid["dead_symbol"].tolist(),
        "received_us": invalid["received_us"].tolist(),
    }
    return frame(columns, OUTPUT, len(invalid))


def make_advance(
    config: EngineConfig, clock: Callable[[], datetime]
) -> Callable[[tuple[Any, ...], Iterator[pd.DataFrame], GroupState], Iterator[pd.DataFrame]]:
    """The applyInPandasWithState function for `config`; `clock` stamps `detected_at`."""

    def advance(
        key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        symbol = str(key[0])
        batch = pd.concat(list(frames), ignore_index=True)
        invalid = batch[batch["kind"] != KIND_TICK]
        if len(invalid):
            yield _dead_letters(invalid, symbol)
        ticks = batch[batch["kind"] == KIND_TICK].sort_values(_ORDER, kind="stable")
        if not len(ticks):
            return
        engine = restore(
            state.get if state.exists else None,
            symbol,
            str(ticks["asset_type"].iloc[0]),
            config,
            clock,
        )
        result = engine.process_batch(_batch(ticks, symbol))
        state.update(snapshot(engine, symbol))
        tick_rows = {name: ticks[name].to_numpy() for name in _TICK_COLUMNS}
        tick_rows["kind"] = np.full(len(ticks), KIND_TICK, dtype=object)
        yield frame(tick_rows, OUTPUT, len(ticks))
        sources = [{"kind": KIND_SOURCE, "symbol": symbol, "source": s} for s in engine.sources]
        yield frame([*_results(result, symbol), *sources], OUTPUT)

    return advance
