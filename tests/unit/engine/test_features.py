"""Window features over arrays, worked out by hand."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

from tickwatch.clock import micros
from tickwatch.engine.features import WindowColumns, summarize
from tickwatch.model import Tick


def window(ticks: list[Tick]) -> dict[str, float]:
    """The one window of `ticks` (one symbol, one window, in observation order), NaN as None."""

    def column(name: str) -> np.ndarray:
        return np.array([math.nan if (v := getattr(t, name)) is None else v for t in ticks])

    start = micros(ticks[0].event_time) // 300_000_000 * 300_000_000
    columns = summarize(
        np.zeros(len(ticks), np.int32),
        np.full(len(ticks), start, np.int64),
        column("price"),
        column("volume"),
        (column("open"), column("high"), column("low"), column("close")),
    )
    assert len(columns.sym) == 1
    names = [f.name for f in fields(WindowColumns) if f.name not in ("sym", "start")]
    return {n: (None if math.isnan(v := float(getattr(columns, n)[0])) else v) for n in names}


def test_ticks_give_ohlcv_vwap_return_and_volatility(make_tick):
    ticks = [
        make_tick("10:00:10", 100.0, 2.0),
        make_tick("10:01:00", 104.0, 1.0),
        make_tick("10:02:00", 98.0, None),
        make_tick("10:04:59", 102.0, 1.0),
    ]
    w = window(ticks)
    assert (w["open"], w["high"], w["low"], w["close"]) == (100.0, 104.0, 98.0, 102.0)
    assert w["volume"] == 4.0  # None is left out of the sum
    assert w["tick_count"] == 4
    assert w["vwap"] == pytest.approx((200 + 104 + 102) / 4)
    assert w["price_return_pct"] == pytest.approx(2.0)
    # mean 101, deviations -1 3 -3 1, squares sum 20, / (4 - 1)
    assert w["volatility"] == pytest.approx(math.sqrt(20 / 3))


def test_bar_contributes_open_high_low_close_in_order(make_tick):
    bar = make_tick("10:00", 11.0, 500.0, open=10.0, high=13.0, low=9.0, close=11.0)
    w = window([bar])
    assert (w["open"], w["high"], w["low"], w["close"]) == (10.0, 13.0, 9.0, 11.0)
    assert w["price_return_pct"] == pytest.approx(10.0)
    # observations 10 13 9 11: mean 10.75, squared deviations 0.5625 5.0625 3.0625 0.0625
    assert w["volatility"] == pytest.approx(math.sqrt(8.75 / 3))
    assert w["tick_count"] == 1


def test_a_bar_between_ticks_keeps_the_observation_order(make_tick):
    ticks = [
        make_tick("10:00", 12.0, None),
        make_tick("10:01", 11.0, None, open=10.0, high=13.0, low=9.0, close=11.0),
        make_tick("10:02", 14.0, None),
    ]
    w = window(ticks)
    # observations 12, 10 13 9 11, 14: open 12, close 14, high 14, low 9
    assert (w["open"], w["high"], w["low"], w["close"]) == (12.0, 14.0, 9.0, 14.0)
    # mean 69 / 6 = 11.5; squared deviations 0.25 2.25 2.25 6.25 0.25 6.25 = 17.5
    assert w["volatility"] == pytest.approx(math.sqrt(17.5 / 5))
    assert w["tick_count"] == 3


def test_single_tick_has_no_volatility_and_all_null_volume_is_null(make_tick):
    w = window([make_tick("10:00", 5.0, None)])
    assert w["volatility"] is None
    assert w["volume"] is None
    assert w["vwap"] is None
    assert w["price_return_pct"] == 0.0


def test_zero_volume_has_no_vwap(make_tick):
    w = window([make_tick("10:00", 5.0, 0.0), make_tick("10:01", 6.0, 0.0)])
    assert w["volume"] == 0.0
    assert w["vwap"] is None


def test_volatility_is_accurate_at_large_price_levels(make_tick):
    # a one-pass sum-of-squares formula loses these digits at 1e9
    ticks = [make_tick(f"10:0{i}", 1e9 + i, None) for i in (1, 2, 3)]
    assert window(ticks)["volatility"] == pytest.approx(1.0, rel=1e-12)


def test_many_windows_of_many_symbols_in_one_call(make_tick):
    # two symbols, AAPL with two windows: groups follow (symbol, start) runs
    sym = np.array([0, 0, 0, 1], np.int32)
    start = np.array([0, 0, 300, 0], np.int64)
    nan = np.full(4, math.nan)
    w = summarize(sym, start, np.array([1.0, 3.0, 5.0, 7.0]), nan, (nan, nan, nan, nan))
    assert w.sym.tolist() == [0, 0, 1] and w.start.tolist() == [0, 300, 0]
    assert w.open.tolist() == [1.0, 5.0, 7.0] and w.close.tolist() == [3.0, 5.0, 7.0]
    assert w.tick_count.tolist() == [2, 1, 1]
    assert w.volatility[0] == pytest.approx(math.sqrt(2.0)) and np.isnan(w.volatility[1:]).all()
