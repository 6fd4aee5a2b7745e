"""The replay's columnar sinks: `window_table` and the stores fed with it, against the rows of
`ColumnarOutput.to_engine_output` (itself held to the reference engine by test_columnar)."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from tickwatch.engine import EngineConfig
from tickwatch.engine.batch import TickBatch
from tickwatch.engine.columnar import ColumnarEngine, ColumnarOutput
from tickwatch.model import CLEAN_MARKET_DATA, AssetType, Tick
from tickwatch.processor import window_table
from tickwatch.store.parquet import SCHEMAS, ParquetLake
from tickwatch.store.sql import SqlStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)
START = datetime(2024, 3, 4, 23, 0, tzinfo=UTC)  # windows on both sides of midnight


def outputs() -> list[ColumnarOutput]:
    """Two symbols, 40 five-minute windows, null volumes, a bar, and a few price jumps."""
    rng = random.Random(11)
    ticks = []
    for minute in range(200):
        for symbol, asset in (("AAPL", AssetType.STOCK), ("bitcoin", AssetType.CRYPTO)):
            at = START + timedelta(minutes=minute, seconds=rng.randrange(60))
            price = 100 + rng.random() + (30 if minute % 37 == 0 else 0)
            volume = None if minute % 11 == 0 else rng.random() * 10
            ticks.append(Tick("test", asset, symbol, at, at, price, volume))
    ticks.sort(key=lambda t: t.event_time)
    engine = ColumnarEngine(EngineConfig(), clock=lambda: NOW)
    return [engine.process_batch(TickBatch.from_ticks(ticks[a : a + 150])) for a in (0, 150, 300)]


def test_window_table_holds_the_as_row_rows_and_anomalies_match() -> None:
    found = 0
    for out in outputs():
        engine_output = out.to_engine_output()
        want = pa.Table.from_pylist(
            [w.as_row() for w in engine_output.windows], schema=SCHEMAS[CLEAN_MARKET_DATA]
        )
        assert window_table(out).equals(want)
        assert out.anomalies() == engine_output.anomalies
        found += len(engine_output.anomalies)
    assert found > 0


def test_stores_fed_with_the_table_hold_what_window_objects_give(tmp_path: Path) -> None:
    def dump(db: Path) -> list[tuple[object, ...]]:
        with sqlite3.connect(db) as con:
            return sorted(con.execute("select * from clean_market_data").fetchall())

    table_store = SqlStore(f"sqlite:///{tmp_path / 'table.db'}")
    plain_store = SqlStore(f"sqlite:///{tmp_path / 'plain.db'}")
    plain_store._fast = None  # the SQLAlchemy path, as on PostgreSQL, fed with the table
    object_store = SqlStore(f"sqlite:///{tmp_path / 'objects.db'}")
    table_lake, object_lake = ParquetLake(tmp_path / "a"), ParquetLake(tmp_path / "b")
    for out in outputs():
        windows = out.to_engine_output().windows
        table_store.write(window_table(out), [])
        plain_store.write(window_table(out), [])
        object_store.write(windows, [])
        table_lake.write_windows(window_table(out))
        object_lake.write_windows(windows)
    for store in (table_store, plain_store, object_store):
        store.close()
    rows = dump(tmp_path / "objects.db")
    assert len(rows) >= 50  # windows closed by the batches (the open ones stay in the engine)
    assert dump(tmp_path / "table.db") == rows
    assert dump(tmp_path / "plain.db") == rows
    table_lake.compact_all()
    object_lake.compact_all()
    assert table_lake.read(CLEAN_MARKET_DATA).equals(object_lake.read(CLEAN_MARKET_DATA))
