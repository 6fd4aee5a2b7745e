"""Explicit Spark schemas of every stage of the job; nothing is inferred, nothing is pickled.

    Kafka rows ── KAFKA_COLUMNS ──► validate (mapInArrow) ── VALIDATED ──►
    groupBy(symbol).applyInPandasWithState ── OUTPUT (state: STATE) ──► foreachBatch sinks

Times cross stage boundaries as integer microseconds since the epoch (`*_us`), which is exact
and free of the session time zone. Record text stays bytes until the project's validator
(`tickwatch.sources.replay_columns.to_batch`, or `tickwatch.normalize.parse_tick` for a chunk it
cannot vouch for) reads it, so both engines judge a record the same way: Spark's JSON reader
would coerce a numeric `symbol` to text and accept a bare `NaN`, the validator rejects both.

OUTPUT is one wide row type for every kind of result, so the sinks select the columns of
their kind: a `ticks` row uses its blob, a window the `clean_market_data` columns, and so
on; the columns shared by name (symbol, asset_type, open/high/low/close, volume, source) mean
the same thing in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from pyspark.sql.types import (
    BinaryType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from tickwatch.model import Feature

# The Kafka source's columns the job reads; (topic, partition, offset) orders one symbol's
# records as they arrived, and the broker timestamp is the record's receive time.
KAFKA_COLUMNS = ("value", "topic", "partition", "offset", "timestamp")

KIND_TICK = "tick"  # a valid record (VALIDATED)
KIND_TICKS = "ticks"  # one row per bucket and batch: its valid ticks as a blob (raw_ticks.py)
KIND_INVALID = "invalid"
KIND_WINDOW = "window"
KIND_ANOMALY = "anomaly"
KIND_LATE = "late"
KIND_SOURCE = "source"  # one row per (symbol, source) of a batch: the store's provenance

_TEXT, _LONG, _DOUBLE, _INT = StringType(), LongType(), DoubleType(), IntegerType()
TICK_NUMBERS = ("price", "volume", "open", "high", "low", "close")


def _fields(kind: DataType, *names: str) -> list[StructField]:
    return [StructField(name, kind, True) for name in names]


VALIDATED = StructType(
    [
        StructField("symbol", _TEXT, False),  # "" when the record has none
        StructField("topic", _TEXT, False),
        StructField("partition", _INT, False),
        StructField("offset", _LONG, False),
        StructField("kind", _TEXT, False),  # KIND_TICK or KIND_INVALID
        # a valid tick (kind tick)
        *_fields(_TEXT, "source", "asset_type"),
        *_fields(_LONG, "event_us", "ingest_us"),
        *_fields(_DOUBLE, *TICK_NUMBERS),
        # an invalid record (kind invalid): the dead letter's fields
        *_fields(_TEXT, "reason", "payload", "dead_source", "dead_symbol"),
        *_fields(_LONG, "received_us"),
    ]
)

# The scoring state of one bucket of symbols, versioned (see state.py): plain columns, no
# pickled objects, so a checkpoint outlives the classes that wrote it. Number arrays are raw
# little-endian bytes (`<f8` doubles, NaN where null; `<i8` microseconds or `<i4` positions in
# a name list), name lists JSON text: PySpark 4.2's Python worker cannot read an array type in
# a state schema (KeyError 'elementType').
STATE_VERSION = 1
_BYTES = BinaryType()
STATE = StructType(
    [
        StructField("version", _INT, False),
        StructField("settings", _TEXT, False),  # the engine settings the state was built with
        # per symbol (the bucket's N symbols, in this order)
        StructField("symbols", _TEXT, False),  # JSON list of N symbol names
        StructField("asset_types", _TEXT, False),  # JSON list of N asset types
        # <i8 x N, the int64 minimum where there is none yet
        *_fields(_BYTES, "max_event_us", "close_watermark_us"),
        # the last `lookback` completed windows' features of each symbol, oldest first
        # (<f8 x N x lookback, symbol by symbol)
        *_fields(_BYTES, *(f"history_{f.value}" for f in Feature)),
        StructField("sources", _TEXT, False),  # JSON list of the source names referred to below
        # the ticks of the windows still open, in arrival order
        *_fields(_BYTES, "open_symbol", "open_source"),  # <i4 positions in symbols / sources
        *_fields(_BYTES, "open_event_us", "open_ingest_us"),  # <i8
        *_fields(_BYTES, *(f"open_{n}" for n in TICK_NUMBERS)),  # <f8
        # (symbol, source, event time) of ticks in recently closed windows: a repeat of one
        # is a duplicate
        *_fields(_BYTES, "seen_symbol", "seen_source", "seen_event_us"),  # <i4, <i4, <i8
    ]
)

SCORE_COLUMNS = tuple(f"{f.value}_{stat}" for f in Feature for stat in ("mean", "std", "z"))
OUTPUT = StructType(
    [
        StructField("kind", _TEXT, False),  # ticks, window, anomaly, late, invalid or source
        StructField("symbol", _TEXT, False),
        *_fields(_TEXT, "asset_type", "source"),
        # ticks: the bucket's valid ticks of the batch, an Arrow IPC stream (raw_ticks.py)
        StructField("ticks", _BYTES, True),
        # window
        *_fields(_DOUBLE, "open", "high", "low", "close", "volume"),
        *_fields(_LONG, "window_start_us", "window_end_us", "tick_count"),
        *_fields(_DOUBLE, "vwap", "price_return_pct", "volatility", *SCORE_COLUMNS),
        # anomaly (and its window's start and end above)
        *_fields(_TEXT, "anomaly_type", "severity"),
        *_fields(_DOUBLE, "value", "mean", "std", "z_score"),
        *_fields(_LONG, "detected_us"),
        # a window or an anomaly as the output topics carry it
        StructField("json", _TEXT, True),
        # dead letter (late or invalid; its source above)
        *_fields(_TEXT, "reason", "payload", "letter_symbol"),
        *_fields(_LONG, "received_us"),
    ]
)


def _column(values: Any, data_type: DataType, n: int) -> Any:
    """One typed column; numpy arrays of the right kind pass through without a copy."""
    if isinstance(data_type, LongType | IntegerType):  # nullable integers
        if values is None:
            return pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, bool))
        if isinstance(values, np.ndarray) and values.dtype.kind == "i":
            return values
        return pd.array(values, dtype="Int64")
    if isinstance(data_type, DoubleType):
        return np.full(n, np.nan) if values is None else np.asarray(values, np.float64)
    if values is None:
        return np.full(n, None, dtype=object)
    column = np.empty(n, dtype=object)  # element by element: text and bytes stay scalars
    column[:] = values
    return column


def frame(
    columns: dict[str, Any] | Sequence[dict[str, Any]], schema: StructType, rows: int | None = None
) -> Any:
    """A pandas DataFrame with exactly `schema`'s columns, typed column by column.

    `columns` maps names to sequences (missing names are all null) or is a list of row
    dicts. Inferred dtypes would turn an all-null text column into float64 NaN, which pyarrow
    then converts to a chunked array that Spark's Arrow writer rejects.
    """
    if not isinstance(columns, dict):
        rows = len(columns)
        columns = {name: [row.get(name) for row in columns] for name in schema.fieldNames()}
    n = rows if rows is not None else max((len(v) for v in columns.values()), default=0)
    return pd.DataFrame(
        {f.name: _column(columns.get(f.name), f.dataType, n) for f in schema.fields}, copy=False
    )
