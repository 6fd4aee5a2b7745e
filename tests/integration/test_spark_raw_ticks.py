"""The raw ticks' blob: what `advance` packs is what the sink's mapInArrow yields, in the
lake's schema (times as UTC microseconds, a null volume kept null)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa

from tickwatch.spark import raw_ticks
from tickwatch.store.parquet import RAW_TICKS, SCHEMAS

T0 = datetime(2024, 3, 4, 14, 30, 1, 250_000, tzinfo=UTC)
T0_US = 1_709_562_601_250_000  # 2024-03-04 14:30:01.25 UTC: 19786 days x 86,400 s + 52,201.25 s


def _validated() -> pd.DataFrame:
    """Two VALIDATED tick rows as the state stage gets them (and a column it must drop)."""
    return pd.DataFrame(
        {
            "symbol": ["AAPL", "bitcoin"],
            "topic": ["raw_stock_ticks", "raw_crypto_ticks"],
            "kind": ["tick", "tick"],
            "source": ["alpha_vantage", "coingecko"],
            "asset_type": ["stock", "crypto"],
            "event_us": np.array([T0_US, T0_US + 1], np.int64),
            "ingest_us": np.array([T0_US + 5, T0_US + 7], np.int64),
            "price": [171.5, 62_000.25],
            "volume": [300.0, np.nan],
            "open": [171.0, np.nan],
            "high": [172.0, np.nan],
            "low": [170.5, np.nan],
            "close": [171.5, np.nan],
        }
    )


def test_packed_ticks_come_back_in_the_lakes_schema() -> None:
    blob = raw_ticks.pack(_validated())
    column = pa.RecordBatch.from_pydict({"ticks": pa.array([blob, blob], pa.binary())})
    out = pa.Table.from_batches(list(raw_ticks.unpack(iter([column]))))

    assert out.schema == SCHEMAS[RAW_TICKS]
    assert out.num_rows == 4  # two blobs of two ticks
    first = out.slice(0, 2).to_pylist()
    assert first[0]["event_time"] == T0
    assert first[1]["ingest_time"] == datetime(2024, 3, 4, 14, 30, 1, 250_007, tzinfo=UTC)
    assert [r["symbol"] for r in first] == ["AAPL", "bitcoin"]
    assert [r["source"] for r in first] == ["alpha_vantage", "coingecko"]
    assert [r["volume"] for r in first] == [300.0, None]
    assert first[1]["price"] == 62_000.25


def test_the_spark_schema_is_the_lakes() -> None:
    assert raw_ticks.SPARK.fieldNames() == SCHEMAS[RAW_TICKS].names
    assert [f.dataType.typeName() for f in raw_ticks.SPARK.fields][3:5] == ["timestamp"] * 2
