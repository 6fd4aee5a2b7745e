"""The SQL store on SQLite: ISO UTC text, upserts on the DESIGN.md keys, restore."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tickwatch.errors import StoreError
from tickwatch.model import (
    NO_SCORE,
    Anomaly,
    AnomalyType,
    AssetType,
    Feature,
    Rejected,
    Score,
    Severity,
    Window,
)
from tickwatch.store.sql import SqlStore, clean_market_data, dead_letters, market_anomalies

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def window(i: int, symbol: str = "AAPL", close: float = 101.0) -> Window:
    start = T0 + timedelta(minutes=5 * i)
    return Window(
        symbol, AssetType.STOCK, start, start + timedelta(minutes=5), 100.0, 102.0, 99.0, close,
        10.0, 3, 100.5, (close - 100) / 100 * 100, 1.2,
        {Feature.PRICE_RETURN: Score(0.1, 0.2, 4.5), Feature.VOLUME: NO_SCORE},
    )  # fmt: skip


def anomaly(i: int, detected: datetime) -> Anomaly:
    w = window(i)
    return Anomaly(
        w.symbol, w.asset_type, w.window_start, w.window_end, AnomalyType.PRICE_SPIKE, 1.0, 0.1,
        0.2, 4.5, Severity.MEDIUM, detected,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path):
    s = SqlStore(f"sqlite:///{tmp_path / 'db' / 'tickwatch.db'}")
    yield s
    s.close()


def test_timestamps_are_iso_utc_text_and_wal_is_on(store: SqlStore, tmp_path: Path):
    store.write([window(0)], [anomaly(0, T0 + timedelta(minutes=5, seconds=1))])
    con = sqlite3.connect(tmp_path / "db" / "tickwatch.db")
    start, end = con.execute("select window_start, window_end from clean_market_data").fetchone()
    assert (start, end) == ("2024-03-04T14:30:00.000+00:00", "2024-03-04T14:35:00.000+00:00")
    detected = con.execute("select detected_at from market_anomalies").fetchone()[0]
    assert detected == "2024-03-04T14:35:01.000+00:00"
    assert con.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_upserts_never_duplicate_and_keep_first_detection(store: SqlStore):
    first = T0 + timedelta(minutes=6)
    store.write([window(0), window(1)], [anomaly(0, first)])
    store.write([window(0, close=105.0)], [anomaly(0, first + timedelta(hours=1))])
    assert store.count(clean_market_data) == 2
    assert store.count(market_anomalies) == 1
    restored = {w.window_start: w for w in store.recent_windows(20)}
    assert restored[T0].close == 105.0  # the newer values win ...
    with store.engine.connect() as conn:
        detected = conn.execute(market_anomalies.select()).one().detected_at
    assert detected == first  # ... but an anomaly keeps the time it was first detected


def test_dead_letters_are_kept_once_per_payload_and_reason(store: SqlStore):
    bad = Rejected("invalid", "price is not finite: nan", '{"price": NaN}', "x", "AAPL", T0)
    store.write([], [], [bad, bad, replace(bad, reason="other")])
    store.write([], [], [bad])
    assert store.count(dead_letters) == 2


def test_recent_windows_gives_the_last_n_per_symbol_oldest_first(store: SqlStore):
    store.write([window(i) for i in range(30)] + [window(i, "MSFT") for i in range(3)], [])
    recent = store.recent_windows(20)
    aapl = [w.window_start for w in recent if w.symbol == "AAPL"]
    assert aapl == [T0 + timedelta(minutes=5 * i) for i in range(10, 30)]
    assert len([w for w in recent if w.symbol == "MSFT"]) == 3
    assert recent[-1].scores[Feature.PRICE_RETURN] == Score(0.1, 0.2, 4.5)


def test_naive_datetimes_are_refused(store: SqlStore):
    naive = replace(window(0), window_start=datetime(2024, 3, 4, 14, 30))
    with pytest.raises(StoreError, match="naive datetime"):
        store.write([naive], [])


def _clean_indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as con:
        rows = con.execute(
            "select name from sqlite_master where type = 'index' and tbl_name = ? "
            "and sql is not null",
            ("clean_market_data",),
        )
        return {name for (name,) in rows}


INDEXES = {"ix_clean_window_start", "ix_clean_asset_type_window_start"}


def test_a_bulk_load_into_a_new_store_builds_its_indexes_at_close(tmp_path: Path):
    path = tmp_path / "tickwatch.db"
    bulk = SqlStore(f"sqlite:///{path}", bulk=True)
    assert _clean_indexes(path) == set()  # kept up row by row no more: built once at the end
    bulk.write([window(i) for i in range(3)], [])
    bulk.close()
    assert _clean_indexes(path) == INDEXES
    again = SqlStore(f"sqlite:///{path}", bulk=True)  # not new: its indexes stay
    assert _clean_indexes(path) == INDEXES
    again.write([window(3)], [])
    again.close()
    with sqlite3.connect(path) as con:
        assert con.execute("select count(*) from clean_market_data").fetchone() == (4,)


def test_indexes_a_dead_bulk_load_left_out_are_built_at_the_next_open(tmp_path: Path):
    path = tmp_path / "tickwatch.db"
    SqlStore(f"sqlite:///{path}", bulk=True).engine.dispose()  # died before close
    assert _clean_indexes(path) == set()
    SqlStore(f"sqlite:///{path}").close()
    assert _clean_indexes(path) == INDEXES
