"""The lake's raw ticks between the state stage and the sink: one Arrow IPC blob per bucket.

The sink writes every valid tick to the lake's `raw_ticks`, but `foreachBatch` only sees the
stateful operator's output. Re-emitting each tick as an OUTPUT row made PySpark convert a
~40-column, mostly null pandas frame to Arrow and the JVM read it back, about 56 us a tick,
most of a micro-batch. So `advance` (state.py) packs its bucket's ticks into one OUTPUT row
(kind `ticks`) holding them as an Arrow IPC stream in the lake's own schema, and the sink
expands those rows with `mapInArrow` (`unpack`), whose batches the JVM takes as they are.
The blob is part of the batch's output, so a re-run batch packs the same ticks again, and the
restart story of sinks.py holds unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from tickwatch.store.parquet import RAW_TICKS, SCHEMAS

ARROW = SCHEMAS[RAW_TICKS]
SPARK: StructType = from_arrow_schema(ARROW)  # the rows `unpack` yields
_TIMES = {"event_time": "event_us", "ingest_time": "ingest_us"}  # lake column: tick column


def pack(ticks: Any) -> bytes:
    """The Arrow IPC stream of `ticks` (a pandas frame of VALIDATED tick rows) in ARROW."""
    arrays = [
        pa.array(ticks[_TIMES[f.name]].to_numpy(), pa.int64()).cast(f.type)
        if f.name in _TIMES
        else pa.array(ticks[f.name].to_numpy(), f.type, from_pandas=True)
        for f in ARROW
    ]
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ARROW) as writer:
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=ARROW))
    return bytes(sink.getvalue())


def unpack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The mapInArrow function: batches of a binary `ticks` column to the ticks they hold."""
    for batch in batches:
        for blob in batch.column(0):
            yield from pa.ipc.open_stream(blob.as_buffer())
