"""The write-inclusive floor: a plain one-pass program doing the writes a replay does.

    python -m bench.writelimit TICKS.jsonl OUT_DIR

Reads the JSON Lines file at once (pyarrow), computes every window and anomaly with
`bench.limit` (knowing all ticks up front), then writes them the plainest way: SQLite tables
with the store's columns and primary keys, filled by one `executemany` of plain INSERTs each
in one transaction, the store's secondary indexes built after the load; raw ticks and windows
to a Parquet lake partitioned by date (`pyarrow.parquet.write_to_dataset`, snappy). No
upserts, no lateness, no streaming state: what a replay costs at least, writes included.
"""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from bench.limit import WINDOW_US, Windows, windows

TS = pa.timestamp("us", tz="UTC")
FEATURES = ("price_return_pct", "volume", "volatility")
TYPES = ("price_spike", "volume_surge", "volatility_burst")
CLEAN = [
    "symbol text", "window_start text", "window_end text", "asset_type text", "open real",
    "high real", "low real", "close real", "volume real", "tick_count integer", "vwap real",
    "price_return_pct real", "volatility real",
    *[f"{f}_{s} real" for f in FEATURES for s in ("mean", "std", "z")],
    "primary key (symbol, window_start)",
]  # fmt: skip
ANOMALIES = [
    "symbol text", "window_start text", "anomaly_type text", "window_end text",
    "asset_type text", "value real", "mean real", "std real", "z_score real", "severity text",
    "detected_at text", "primary key (symbol, window_start, anomaly_type)",
]  # fmt: skip
INDEXES = [
    "create index ix_clean_window_start on clean_market_data (window_start)",
    "create index ix_clean_asset on clean_market_data (asset_type, window_start)",
    "create index ix_anomalies_window_start on market_anomalies (window_start)",
    "create index ix_anomalies_detected_at on market_anomalies (detected_at)",
    "create index ix_anomalies_type on market_anomalies (anomaly_type, window_start)",
    "create index ix_anomalies_severity on market_anomalies (severity, window_start)",
]


@dataclass
class Columns:
    symbols: list[str]
    symbol_code: npt.NDArray[np.int32]
    event: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]


def main(path: Path, out: Path) -> None:
    ticks = pj.read_json(
        path,
        read_options=pj.ReadOptions(block_size=32 << 20),  # pyarrow's 1 MB: twice as slow here
        parse_options=pj.ParseOptions(
            explicit_schema=pa.schema([("event_time", TS), ("ingest_time", TS)])
        ),
    )
    symbols = ticks["symbol"].combine_chunks().dictionary_encode()
    batch = Columns(
        symbols.dictionary.to_pylist(),
        symbols.indices.to_numpy(),
        ticks["event_time"].cast(pa.int64()).to_numpy(),
        ticks["price"].to_numpy(),
        ticks["volume"].to_numpy(),
    )
    w = windows(batch)
    names = np.array(batch.symbols, dtype=object)[w.sym]
    db = sqlite3.connect(out / "limit.db")
    db.execute(f"create table clean_market_data ({', '.join(CLEAN)})")
    db.execute(f"create table market_anomalies ({', '.join(ANOMALIES)})")
    with db:
        db.executemany(
            f"insert into clean_market_data values ({', '.join('?' * 22)})", _rows(w, names)
        )
        db.executemany(
            f"insert into market_anomalies values ({', '.join('?' * 11)})", _anomalies(w, names)
        )
        for index in INDEXES:
            db.execute(index)
    db.close()
    _by_day(ticks, "event_time", out / "lake" / "raw_ticks")
    _by_day(_table(w, names), "window_start", out / "lake" / "clean_market_data")


def _by_day(table: pa.Table, column: str, folder: Path) -> None:
    """One snappy Parquet file per UTC date, in hive-style date= folders."""
    days = pc.divide(table[column].cast(pa.int64()), 86_400_000_000)
    for number in pc.unique(days).to_pylist():
        day = np.datetime64(number, "D")
        (folder / f"date={day}").mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.filter(pc.equal(days, number)), folder / f"date={day}" / "part-0.parquet"
        )


def _text(micros: np.ndarray) -> list[str]:
    """ISO 8601 with milliseconds and +00:00, as the store writes times."""
    return np.char.add(
        np.datetime_as_string(micros.astype("datetime64[us]"), "ms"), "+00:00"
    ).tolist()


def _nulls(x: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in x.tolist()]


def _rows(w: Windows, names: np.ndarray) -> list[tuple[object, ...]]:
    """`clean_market_data` rows in column order, times as text, NaN as null."""
    cols: list[list[object]] = [
        names.tolist(),
        _text(w.start),
        _text(w.start + WINDOW_US),
        ["crypto"] * len(w.sym),
        w.open.tolist(),
        w.high.tolist(),
        w.low.tolist(),
        w.close.tolist(),
        w.volume.tolist(),
        w.count.tolist(),
        w.vwap.tolist(),
        w.ret.tolist(),
        _nulls(w.volatility),
    ]
    for k in range(3):
        cols += [_nulls(w.mean[k]), _nulls(w.std[k]), _nulls(w.z[k])]
    return list(zip(*cols, strict=True))


def _anomalies(w: Windows, names: np.ndarray) -> list[tuple[object, ...]]:
    az = np.abs(np.nan_to_num(w.z))
    f, i = np.nonzero(az > 3.0)
    values = np.array([w.ret, w.volume, w.volatility])
    severity = np.where(az[f, i] > 5, "high", np.where(az[f, i] > 4, "medium", "low"))
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return list(
        zip(
            names[i].tolist(),
            _text(w.start[i]),
            np.array(TYPES)[f].tolist(),
            _text(w.start[i] + WINDOW_US),
            ["crypto"] * len(i),
            values[f, i].tolist(),
            w.mean[f, i].tolist(),
            w.std[f, i].tolist(),
            w.z[f, i].tolist(),
            severity.tolist(),
            [now] * len(i),
            strict=True,
        )
    )


def _table(w: Windows, names: np.ndarray) -> pa.Table:
    start = pa.array(w.start).cast(TS)
    columns = {
        "symbol": pa.array(names.tolist(), pa.string()),
        "window_start": start,
        "window_end": pa.array(w.start + WINDOW_US).cast(TS),
        "asset_type": pa.array(["crypto"] * len(w.sym)),
        "open": w.open,
        "high": w.high,
        "low": w.low,
        "close": w.close,
        "volume": w.volume,
        "tick_count": w.count,
        "vwap": w.vwap,
        "price_return_pct": w.ret,
        "volatility": pa.array(w.volatility, mask=np.isnan(w.volatility)),
    }
    for k, feature in enumerate(FEATURES):
        for stat, x in (("mean", w.mean[k]), ("std", w.std[k]), ("z", w.z[k])):
            columns[f"{feature}_{stat}"] = pa.array(x, mask=np.isnan(x))
    return pa.table(columns)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
