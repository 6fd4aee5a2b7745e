"""Stage 1 of the job: raw Kafka records to validated ticks or dead letters (mapInArrow).

A chunk of records is judged as columns by `tickwatch.sources.replay_columns.to_batch`, the array
checks `tickwatch replay` uses, which accept a chunk only when every row is one that
`tickwatch.normalize.parse_tick` would accept with the same tick. A chunk with any doubtful
record (malformed JSON, a negative price, a missing ingest time, a null value, ...) is split
in halves until the pieces pass or are small, and a small piece with a doubtful record goes
record by record through `parse_tick` (after `tickwatch.decoding.decode`), exactly as the
embedded processor judges it, so the two engines accept and reject the same records with the
same reasons.

"Now" for the clock-skew rule and a dead letter's `received_at` is the broker's timestamp of
the record, which makes a replay after a restart give the same answer. The column path checks
the whole chunk against its earliest broker timestamp, which is stricter than each record's
own, so any record it accepts the record path accepts too.

A valid tick keeps the symbol as the validator wrote it (trimmed); that symbol is the key the
next stage groups by. An invalid record is keyed by "" (it has no trustworthy symbol) and
carries its dead letter's fields.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pj
from pyspark.sql.pandas.types import to_arrow_schema

from tickwatch.clock import from_micros, micros
from tickwatch.decoding import decode
from tickwatch.engine.batch import ASSET_TYPES, TickBatch
from tickwatch.errors import InvalidTick
from tickwatch.model import Tick
from tickwatch.normalize import parse_tick, reject
from tickwatch.sources.replay_columns import SCHEMA, pyarrow_reads_like_orjson, to_batch
from tickwatch.spark.schemas import KIND_INVALID, KIND_TICK, TICK_NUMBERS, VALIDATED

_ARROW = to_arrow_schema(VALIDATED)
_PIECE = 2_000  # records a doubtful chunk is split down to before the record path


def validate_record(value: bytes, received_us: int, max_skew: timedelta) -> dict[str, Any]:
    """The VALIDATED row (without the Kafka position) of one raw record."""
    now = from_micros(received_us)
    try:
        tick = parse_tick(decode(value), now, max_skew)
    except InvalidTick as error:
        dead = reject(value, error, now)
        return {
            "symbol": "",
            "kind": KIND_INVALID,
            "reason": dead.reason,
            "payload": dead.payload,
            "dead_source": dead.source,
            "dead_symbol": dead.symbol,
            "received_us": received_us,
        }
    return tick_row(tick)


def tick_row(tick: Tick) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": tick.symbol,
        "kind": KIND_TICK,
        "source": tick.source,
        "asset_type": tick.asset_type.value,
        "event_us": micros(tick.event_time),
        "ingest_us": micros(tick.ingest_time),
    }
    row.update({name: getattr(tick, name) for name in TICK_NUMBERS})
    return row


def _lines(values: pa.Array) -> bytes | None:
    """The records as JSON Lines (each value, then a newline); None when a value is null (a
    Kafka tombstone, which the record path judges)."""
    if values.null_count:
        return None
    return b"\n".join(values.to_pylist()) + b"\n"


def _as_columns(values: pa.Array, received: Any, max_skew: timedelta) -> TickBatch | None:
    """The chunk as validated columns, or None when any record needs `parse_tick`."""
    data = _lines(values)
    if data is None or data.count(b"\n") != len(values):
        return None  # a null value, or a record spanning lines
    if not pyarrow_reads_like_orjson(data, len(values)):
        return None  # bytes pyarrow reads unlike orjson
    options = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
    table = None
    with contextlib.suppress(pa.ArrowException):
        table = pj.read_json(io.BytesIO(data), parse_options=options)
    if table is None or table.num_rows != len(values) or table["ingest_time"].null_count:
        return None  # a missing ingest time is each record's own "now": the record path
    return to_batch(table, from_micros(int(np.min(received))), max_skew)


def _batch_columns(batch: TickBatch) -> dict[str, Any]:
    symbols = np.asarray(batch.symbols, dtype=object)[batch.symbol_code]
    assets = np.asarray([a.value for a in ASSET_TYPES], dtype=object)[batch.asset_code]
    columns: dict[str, Any] = {
        "symbol": symbols,
        "kind": np.full(len(batch), KIND_TICK, dtype=object),
        "source": np.asarray(batch.sources, dtype=object)[batch.source_code],
        "asset_type": assets,
        "event_us": batch.event,
        "ingest_us": batch.ingest,
    }
    columns.update({name: getattr(batch, name) for name in TICK_NUMBERS})
    return columns


def _record_columns(values: pa.Array, received: Any, max_skew: timedelta) -> dict[str, Any]:
    rows = [
        validate_record(value, int(at), max_skew)
        for value, at in zip(values.to_pylist(), received.tolist(), strict=True)
    ]
    return {name: [row.get(name) for row in rows] for name in _ARROW.names}


def _validated(chunk: pa.RecordBatch, max_skew: timedelta) -> Iterator[pa.RecordBatch]:
    """VALIDATED batches of `chunk`: as columns when it can, else split in halves so that one
    doubtful record sends only a small piece (`_PIECE` records at most) down the record path."""
    values = chunk.column("value")
    received = chunk.column("received_us").to_numpy(zero_copy_only=False)
    fast = _as_columns(values, received, max_skew)
    if fast is None and chunk.num_rows > _PIECE:
        half = chunk.num_rows // 2
        yield from _validated(chunk.slice(0, half), max_skew)
        yield from _validated(chunk.slice(half), max_skew)
        return
    columns = (
        _batch_columns(fast) if fast is not None else _record_columns(values, received, max_skew)
    )
    arrays = [
        chunk.column(f.name).cast(f.type)
        if f.name in ("topic", "partition", "offset")
        else pa.array(columns[f.name], f.type, from_pandas=True)
        if f.name in columns
        else pa.nulls(chunk.num_rows, f.type)
        for f in _ARROW
    ]
    yield pa.RecordBatch.from_arrays(arrays, schema=_ARROW)


def validate_batches(max_skew: timedelta) -> Any:
    """The mapInArrow function: batches of (value, topic, partition, offset, received_us)."""

    def validate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for chunk in batches:
            if chunk.num_rows:
                yield from _validated(chunk, max_skew)

    return validate
