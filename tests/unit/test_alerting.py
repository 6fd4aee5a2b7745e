"""The alert stage's view of closed windows: columns and objects give the same bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa

from tickwatch.alerting import bars_from_windows
from tickwatch.model import CLEAN_MARKET_DATA, AssetType, Window
from tickwatch.store.parquet import SCHEMAS

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
W = timedelta(minutes=5)


def window(symbol: str, asset: AssetType, i: int, volume: float | None) -> Window:
    close = 100.0 + i
    return Window(
        symbol=symbol,
        asset_type=asset,
        window_start=T0 + i * W,
        window_end=T0 + (i + 1) * W,
        open=close - 0.5,
        high=close + 1,
        low=close - 1,
        close=close,
        volume=volume,
        tick_count=i + 1,
        vwap=None,
        price_return_pct=0.1,
        volatility=None if volume is None else 0.25 * i,
    )


def test_columns_give_the_bars_of_the_objects_in_window_order() -> None:
    # out of order, two asset classes, shared starts, null volume and volatility
    windows = [
        window("AAPL", AssetType.STOCK, 3, 500.0),
        window("bitcoin", AssetType.CRYPTO, 1, None),
        window("AAPL", AssetType.STOCK, 1, 100.0),
        window("bitcoin", AssetType.CRYPTO, 3, 7.5),
        window("AAPL", AssetType.STOCK, 2, 0.0),
    ]
    table = pa.Table.from_pylist([w.as_row() for w in windows], schema=SCHEMAS[CLEAN_MARKET_DATA])
    from_columns = bars_from_windows(table)
    # stable order by start: at starts 1 and 3 the symbols keep the order they were given in
    expected = [windows[i] for i in (1, 2, 4, 0, 3)]
    assert [(b.symbol, b.window_start) for b in from_columns] == [
        (w.symbol, w.window_start) for w in expected
    ]
    assert from_columns == bars_from_windows(windows)
    assert from_columns[0].volume is None and from_columns[0].volatility is None
    assert from_columns[1].asset_type is AssetType.STOCK
    assert from_columns[0].window_start.utcoffset() == timedelta(0)
    assert bars_from_windows(table.slice(0, 0)) == []
