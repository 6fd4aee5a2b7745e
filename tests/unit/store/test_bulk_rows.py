"""The bulk writers (SQLite tuples, Arrow columns, one-sort compaction) against the plain ones."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from tickwatch.model import (
    NO_SCORE,
    Anomaly,
    AnomalyType,
    AssetType,
    Feature,
    Score,
    Severity,
    Window,
)
from tickwatch.store.parquet import (
    CLEAN_MARKET_DATA,
    KEYS,
    RAW_TICKS,
    SCHEMAS,
    ParquetLake,
    _compacted,
    _latest_per_key,
)
from tickwatch.store.sql import SqlStore, clean_market_data, market_anomalies

T0 = datetime(2024, 3, 4, 23, 50, tzinfo=UTC)


def windows(n: int) -> list[Window]:
    out = []
    for i in range(n):
        start = T0 + timedelta(minutes=5 * (i // 2))
        volume = None if i % 3 == 0 else float(i)
        scores = {Feature.PRICE_RETURN: Score(0.1 * i, 0.2, 4.5 - i), Feature.VOLUME: NO_SCORE}
        out.append(
            Window(
                f"S{i % 2}", AssetType.CRYPTO if i % 2 else AssetType.STOCK, start,
                start + timedelta(minutes=5), 1.0 + i, 2.0 + i, 0.5, 1.5, volume, i + 1,
                volume, 0.25 * i, None if i % 4 == 0 else 0.01 * i, scores,
            )
        )  # fmt: skip
    return out


def anomalies(ws: list[Window]) -> list[Anomaly]:
    detected = T0 + timedelta(hours=1, milliseconds=7)
    return [
        Anomaly(
            w.symbol, w.asset_type, w.window_start, w.window_end, AnomalyType.VOLUME_SURGE,
            float(i), 0.5, 0.1, 3.5 + i, Severity.HIGH, detected,
        )
        for i, w in enumerate(ws)
    ]  # fmt: skip


def dump(path: Path) -> list[list[tuple[object, ...]]]:
    with sqlite3.connect(path) as con:
        return [
            sorted(con.execute(f"select * from {t.name}").fetchall())
            for t in (clean_market_data, market_anomalies)
        ]


def test_sqlite_tuples_store_what_the_sqlalchemy_dicts_store(tmp_path: Path) -> None:
    ws = windows(12)
    fast = SqlStore(f"sqlite:///{tmp_path / 'fast.db'}")
    plain = SqlStore(f"sqlite:///{tmp_path / 'plain.db'}")
    plain._fast = None  # the SQLAlchemy path, as PostgreSQL takes it
    for store in (fast, plain):
        store.write(ws, anomalies(ws))
        store.write(ws[:3], anomalies(ws[:3]))  # upsert again: no new rows
        store.close()
    assert dump(tmp_path / "fast.db") == dump(tmp_path / "plain.db")
    assert len(dump(tmp_path / "fast.db")[0]) == 12


def test_window_columns_are_the_rows_of_as_row(tmp_path: Path) -> None:
    ws = windows(9)
    lake = ParquetLake(tmp_path)
    lake.write_windows(ws)
    lake.flush()
    expected = pa.Table.from_pylist([w.as_row() for w in ws], schema=SCHEMAS[CLEAN_MARKET_DATA])
    stored = lake.read(CLEAN_MARKET_DATA)
    assert stored.schema == expected.schema
    assert sorted(stored.to_pylist(), key=repr) == sorted(expected.to_pylist(), key=repr)


def test_one_sort_compaction_equals_latest_per_key_then_sort() -> None:
    rng = random.Random(5)
    keys = KEYS[RAW_TICKS]
    schema = SCHEMAS[RAW_TICKS]
    parts = []
    for _ in range(4):  # four files, keys repeated within and across them
        rows = []
        for _ in range(300):
            moment = T0 + timedelta(seconds=rng.randrange(40))
            rows.append(
                {
                    "source": rng.choice(["b", "a", "zz"]),
                    "asset_type": "stock",
                    "symbol": rng.choice(["MSFT", "AAPL", "Z", "aapl"]),
                    "event_time": moment,
                    "ingest_time": moment,
                    "price": rng.random(),
                    "volume": None,
                    "open": None,
                    "high": None,
                    "low": None,
                    "close": None,
                }
            )
        parts.append(pa.Table.from_pylist(rows, schema=schema))
    data = pa.concat_tables(parts)
    expected = _latest_per_key(data, keys).sort_by([(k, "ascending") for k in keys])
    assert _compacted(data, keys).equals(expected)
    encoded = [  # text as dictionaries, each file with its own (as `compact` reads them)
        pa.table(
            {
                n: p[n].dictionary_encode() if n in ("source", "symbol") else p[n]
                for n in p.column_names
            }
        )
        for p in parts
    ]
    merged = pa.concat_tables(encoded).unify_dictionaries()
    assert _compacted(merged, keys).cast(schema).equals(expected)
    unique = expected.slice(0, 50)
    assert _compacted(unique, keys).equals(unique.sort_by([(k, "ascending") for k in keys]))
