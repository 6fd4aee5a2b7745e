"""Stage 2 of the job: the columnar engine on buckets of symbols, state kept by Spark.

Spark's own watermark is global (the minimum over all inputs), while DESIGN.md closes windows
on a per-symbol watermark. So the job keeps the project's engine, whose watermark is per
symbol, as Spark group state: symbols are hashed into a fixed number of buckets
(`pmod(hash(symbol), buckets)`, job.py), and
`groupBy("bucket").applyInPandasWithState(advance, ...)` calls `advance` once per bucket
with new records in a micro-batch. `advance` rebuilds the bucket's `ColumnarEngine` from the
group state, feeds it the batch's ticks as one column batch in arrival order, emits what it
closed and stores the state back. The engine is the very code `tickwatch replay` runs, so
windows, features, baselines, z-scores, severities, late and duplicate handling are defined
once; a bucket rather than a symbol per call keeps the Python and pandas cost of a call
(milliseconds) off each symbol.

Arrival order is (topic, partition, offset): producers key records by symbol, so one symbol's
records sit in one partition in the order they were sent, which is the order the embedded
engine sees them in. Micro-batch boundaries do not matter: the engine's result over a batch
equals its result tick by tick.

**State** (schemas.STATE, version `STATE_VERSION`) is plain columns and arrays, no pickled
class: the settings it was built with, and per symbol of the bucket the largest event time,
the watermark of the last window close and the last `lookback` completed windows' three
features; then the ticks of the open windows, and the (symbol, source, event time) keys of
recently closed windows that make a repeat a duplicate. It lives in Spark's checkpointed
state store, so a restart resumes it exactly. A state of an older version is upgraded by
`_UPGRADES` when read; a newer one, or one built with other window, lateness, lookback or
bucket settings, is refused rather than misread (a symbol must stay in its bucket).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
from pyspark.sql.streaming.state import GroupState

from tickwatch.clock import from_micros, micros
from tickwatch.engine import ColumnarEngine, ColumnarOutput, EngineConfig
from tickwatch.engine.batch import ASSET_TYPES, TickBatch
from tickwatch.engine.columnar import EngineState
from tickwatch.errors import ConfigError
from tickwatch.model import Anomaly, AssetType, Feature
from tickwatch.processor import window_table
from tickwatch.spark import raw_ticks
from tickwatch.spark.schemas import (
    KIND_ANOMALY,
    KIND_INVALID,
    KIND_SOURCE,
    KIND_TICK,
    KIND_TICKS,
    KIND_WINDOW,
    OUTPUT,
    STATE,
    STATE_VERSION,
    TICK_NUMBERS,
    frame,
)

_TIMES = {"window_start": "window_start_us", "window_end": "window_end_us"}
# How a state of an older version becomes the next version's row (none yet: version 1 is the
# first state without pickles).
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def settings_text(config: EngineConfig, buckets: int) -> str:
    """What a state depends on: the window settings and the symbols' buckets (the scoring
    thresholds may change freely)."""
    return (
        f"window_us={config.window.total_seconds() * 1e6:.0f} "
        f"lateness_us={config.allowed_lateness.total_seconds() * 1e6:.0f} "
        f"lookback={config.lookback} buckets={buckets}"
    )


def _bytes(values: Any, dtype: str) -> bytes:
    return np.ascontiguousarray(values, dtype).tobytes()


def _array(data: bytes, dtype: str, into: Any) -> Any:
    return np.frombuffer(data, dtype).astype(into)


def _names(values: Any) -> str:
    return orjson.dumps(list(values)).decode()


def snapshot(engine: ColumnarEngine, buckets: int) -> tuple[Any, ...]:
    """The STATE row of `engine` (the symbols of one bucket)."""
    state = engine.snapshot()
    o = state.open
    row: dict[str, Any] = {
        "version": STATE_VERSION,
        "settings": settings_text(engine.config, buckets),
        "symbols": _names(state.symbols),
        "asset_types": _names(ASSET_TYPES[a].value for a in state.asset_code),
        "max_event_us": _bytes(state.max_event, "<i8"),
        "close_watermark_us": _bytes(state.close_watermark, "<i8"),
        **{f"history_{f.value}": _bytes(state.history[:, k], "<f8") for k, f in enumerate(Feature)},
        "sources": _names(state.sources),
        "open_symbol": _bytes(o["sym"], "<i4"),
        "open_source": _bytes(o["src"], "<i4"),
        "open_event_us": _bytes(o["event"], "<i8"),
        "open_ingest_us": _bytes(o["ingest"], "<i8"),
        **{f"open_{c}": _bytes(o[c], "<f8") for c in TICK_NUMBERS},
        "seen_symbol": _bytes(state.seen_sym, "<i4"),
        "seen_source": _bytes(state.seen_src, "<i4"),
        "seen_event_us": _bytes(state.seen_event, "<i8"),
    }
    return tuple(row[name] for name in STATE.fieldNames())


def restore(
    values: tuple[Any, ...] | None,
    config: EngineConfig,
    buckets: int,
    clock: Callable[[], datetime],
) -> ColumnarEngine:
    """The engine of one bucket resumed from its STATE row (a fresh one when None)."""
    if values is None:
        return ColumnarEngine(config, clock)
    row = _upgraded(dict(zip(STATE.fieldNames(), values, strict=True)))
    if row["settings"] != settings_text(config, buckets):
        raise ConfigError(
            f"the Spark checkpoint's state was built with {row['settings']}, not "
            f"{settings_text(config, buckets)}; start the job with a new checkpoint folder to "
            "use new window, lateness, lookback or bucket settings"
        )
    symbols = orjson.loads(row["symbols"])
    n = len(symbols)
    assets = [ASSET_TYPES.index(AssetType(a)) for a in orjson.loads(row["asset_types"])]
    history = [
        _array(row[f"history_{f.value}"], "<f8", np.float64).reshape(n, config.lookback)
        for f in Feature
    ]
    state = EngineState(
        symbols=symbols,
        asset_code=np.array(assets, np.int8),
        max_event=_array(row["max_event_us"], "<i8", np.int64),
        close_watermark=_array(row["close_watermark_us"], "<i8", np.int64),
        history=np.stack(history, axis=1),
        sources=orjson.loads(row["sources"]),
        open={
            "sym": _array(row["open_symbol"], "<i4", np.int32),
            "src": _array(row["open_source"], "<i4", np.int32),
            "event": _array(row["open_event_us"], "<i8", np.int64),
            "ingest": _array(row["open_ingest_us"], "<i8", np.int64),
            **{c: _array(row[f"open_{c}"], "<f8", np.float64) for c in TICK_NUMBERS},
        },
        seen_sym=_array(row["seen_symbol"], "<i4", np.int32),
        seen_src=_array(row["seen_source"], "<i4", np.int32),
        seen_event=_array(row["seen_event_us"], "<i8", np.int64),
    )
    return ColumnarEngine.from_snapshot(config, clock, state)


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


def _batch(ticks: pd.DataFrame) -> TickBatch:
    symbol_code, symbols = pd.factorize(ticks["symbol"])
    source_code, sources = pd.factorize(ticks["source"])

    def floats(name: str) -> Any:
        return ticks[name].to_numpy(np.float64, na_value=np.nan)

    return TickBatch(
        symbols=[str(s) for s in symbols],
        sources=[str(s) for s in sources],
        symbol_code=symbol_code.astype(np.int32),
        source_code=source_code.astype(np.int32),
        asset_code=(ticks["asset_type"].to_numpy(object) == AssetType.CRYPTO.value).astype(np.int8),
        event=ticks["event_us"].to_numpy(np.int64),
        ingest=ticks["ingest_us"].to_numpy(np.int64),
        **{name: floats(name) for name in TICK_NUMBERS},
    )


def _row(kind: str, item: Anomaly) -> dict[str, Any]:
    """An anomaly's OUTPUT row: its store columns, times in microseconds, and its JSON as
    `tickwatch.bus.kafka.encode` writes it for the output topics."""
    row = item.as_row()
    times = {
        f"{name}_us": micros(value) for name, value in row.items() if isinstance(value, datetime)
    }
    if "detected_at_us" in times:
        times["detected_us"] = times.pop("detected_at_us")
    return {**row, **times, "kind": kind, "json": orjson.dumps(row).decode()}


def _windows(result: ColumnarOutput) -> pd.DataFrame | None:
    """The closed windows of `result` as OUTPUT rows, built from the engine's columns (the
    lake's `window_table`) rather than a `Window` object each."""
    table = window_table(result)
    if table.num_rows == 0:
        return None
    columns = {
        _TIMES.get(name, name): column.cast(pa.int64()).to_numpy()
        if name in _TIMES
        else column.to_numpy(zero_copy_only=False)
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    columns["kind"] = np.full(table.num_rows, KIND_WINDOW, dtype=object)
    # the JSON of `Window.as_row()`, which has the table's columns in its order; column by
    # column, which is several times faster than pyarrow's row by row `to_pylist`
    values = [
        [from_micros(t) for t in columns[_TIMES[name]].tolist()]
        if name in _TIMES
        else column.to_pylist()
        for name, column in zip(table.column_names, table.columns, strict=True)
    ]
    columns["json"] = [
        orjson.dumps(dict(zip(table.column_names, row, strict=True))).decode()
        for row in zip(*values, strict=True)
    ]
    return frame(columns, OUTPUT, table.num_rows)


def _results(result: ColumnarOutput) -> list[dict[str, Any]]:
    """Anomalies and late ticks of `result` as OUTPUT rows."""
    rows = [_row(KIND_ANOMALY, a) for a in result.anomalies()]
    rows += [
        {
            "kind": late.kind,
            "symbol": late.symbol or "",
            "reason": late.reason,
            "payload": late.payload,
            "source": late.source,
            "letter_symbol": late.symbol,
            "received_us": micros(late.received_at),
        }
        for late in result.late
    ]
    return rows


def _invalid(records: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "kind": KIND_INVALID,
            "symbol": "",
            "reason": reason,
            "payload": payload,
            "source": source,
            "letter_symbol": symbol,
            "received_us": received,
        }
        for reason, payload, source, symbol, received in zip(
            records["reason"],
            records["payload"],
            records["dead_source"],
            records["dead_symbol"],
            records["received_us"].tolist(),
            strict=True,
        )
    ]


def _arrival_order(ticks: pd.DataFrame) -> pd.DataFrame:
    """`ticks` sorted by (topic, partition, offset), with integer sort keys only."""
    topic = pd.factorize(ticks["topic"], sort=True)[0]
    order = np.lexsort((ticks["offset"].to_numpy(), ticks["partition"].to_numpy(), topic))
    return ticks.take(order)


def make_advance(
    config: EngineConfig, buckets: int, clock: Callable[[], datetime]
) -> Callable[[tuple[Any, ...], Iterator[pd.DataFrame], GroupState], Iterator[pd.DataFrame]]:
    """The applyInPandasWithState function for `config` over `buckets` buckets of symbols;
    `clock` stamps `detected_at`."""

    def advance(
        key: tuple[Any, ...], frames: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        parts = list(frames)  # one frame unless the bucket's batch exceeds an Arrow batch
        batch = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        valid = (batch["kind"] == KIND_TICK).to_numpy()
        rows = _invalid(batch[~valid])
        ticks = _arrival_order(batch[valid])
        if len(ticks):
            engine = restore(state.get if state.exists else None, config, buckets, clock)
            tick_batch = _batch(ticks)
            result = engine.process_batch(tick_batch)
            state.update(snapshot(engine, buckets))
            # every valid tick goes to the lake, as one row: see raw_ticks.py for why
            rows.append({"kind": KIND_TICKS, "symbol": "", "ticks": raw_ticks.pack(ticks)})
            windows = _windows(result)
            if windows is not None:
                yield windows
            rows += _results(result)
            rows += [{"kind": KIND_SOURCE, "symbol": "", "source": s} for s in tick_batch.sources]
        if rows:
            yield frame(rows, OUTPUT)

    return advance
