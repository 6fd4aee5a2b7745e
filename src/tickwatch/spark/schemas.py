"""Explicit Spark schemas of every stage of the job; nothing is inferred.

    Kafka rows ── KAFKA_COLUMNS ──► validate (mapInPandas) ── VALIDATED ──►
    groupBy(symbol).applyInPandasWithState ── OUTPUT (state: STATE) ──► foreachBatch sinks

Times cross stage boundaries as integer microseconds since the epoch (`*_us`), which is exact
and free of the session time zone. Record text stays bytes until the canonical validator
(`tickwatch.normalize.parse_tick`) reads it, so both engines judge a record the same way: Spark's
JSON reader would coerce a numeric `symbol` to text and accept a bare `NaN`, the validator
rejects both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

# The Kafka source's columns the job reads; (topic, partition, offset) orders one symbol's
# records as they arrived, and the broker timestamp is the record's receive time.
KAFKA_COLUMNS = ("value", "topic", "partition", "offset", "timestamp")

KIND_TICK = "tick"
KIND_INVALID = "invalid"
KIND_WINDOW = "window"
KIND_ANOMALY = "anomaly"
KIND_LATE = "late"

VALIDATED = StructType(
    [
        StructField("symbol", StringType(), False),  # "" when the record has none
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("kind", StringType(), False),  # KIND_TICK or KIND_INVALID
        # a valid tick (kind tick)
        StructField("source", StringType(), True),
        StructField("asset_type", StringType(), True),
        StructField("event_us", LongType(), True),
        StructField("ingest_us", LongType(), True),
        StructField("price", DoubleType(), True),
        StructField("volume", DoubleType(), True),
        StructField("open", DoubleType(), True),
        StructField("high", DoubleType(), True),
        StructField("low", DoubleType(), True),
        StructField("close", DoubleType(), True),
        # an invalid record (kind invalid): the dead letter's fields
        StructField("reason", StringType(), True),
        StructField("payload", StringType(), True),
        StructField("dead_source", StringType(), True),
        StructField("dead_symbol", StringType(), True),
        StructField("received_us", LongType(), True),
    ]
)

# One symbol's engine (open windows, recent duplicate keys, baselines), pickled; see state.py.
STATE = StructType([StructField("engine", BinaryType(), False)])

OUTPUT = StructType(
    [
        StructField("kind", StringType(), False),  # tick, window, anomaly, late or invalid
        StructField("symbol", StringType(), False),
        StructField("json", StringType(), True),  # the message for the output topics
        StructField("data", BinaryType(), False),  # the pickled model object, for the sinks
    ]
)


def _dtype(data_type: DataType) -> str:
    if isinstance(data_type, LongType | IntegerType):
        return "Int64"  # nullable integers
    if isinstance(data_type, DoubleType):
        return "float64"
    return "object"  # text and bytes


def frame(rows: Sequence[dict[str, Any]] | Sequence[tuple[Any, ...]], schema: StructType) -> Any:
    """A pandas DataFrame of `rows` typed column by column after `schema`.

    Inferred dtypes would turn an all-null text column into float64 NaN, which pyarrow then
    converts to a chunked array that Spark's Arrow writer rejects.
    """
    names = schema.fieldNames()
    raw = pd.DataFrame(list(rows), columns=names)
    return pd.DataFrame(
        {
            field.name: pd.Series(raw[field.name].tolist(), dtype=_dtype(field.dataType))
            for field in schema.fields
        }
    )
