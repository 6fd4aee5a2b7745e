"""Window features, worked out by hand."""

from __future__ import annotations

import math

import pytest

from tests.conftest import at_time
from tickwatch.engine.features import sample_std, summarize
from tickwatch.model import AssetType


def test_ticks_give_ohlcv_vwap_return_and_volatility(make_tick):
    ticks = [
        make_tick("10:00:10", 100.0, 2.0),
        make_tick("10:01:00", 104.0, 1.0),
        make_tick("10:02:00", 98.0, None),
        make_tick("10:04:59", 102.0, 1.0),
    ]
    w = summarize("AAPL", AssetType.STOCK, at_time("10:00"), at_time("10:05"), ticks)
    assert (w.open, w.high, w.low, w.close) == (100.0, 104.0, 98.0, 102.0)
    assert w.volume == 4.0  # None is left out of the sum
    assert w.tick_count == 4
    assert w.vwap == pytest.approx((200 + 104 + 102) / 4)
    assert w.price_return_pct == pytest.approx(2.0)
    # mean 101, deviations -1 3 -3 1, squares sum 20, / (4 - 1)
    assert w.volatility == pytest.approx(math.sqrt(20 / 3))


def test_bar_contributes_open_high_low_close_in_order(make_tick):
    bar = make_tick("10:00", 11.0, 500.0, open=10.0, high=13.0, low=9.0, close=11.0)
    w = summarize("IBM", AssetType.STOCK, at_time("10:00"), at_time("10:05"), [bar])
    assert (w.open, w.high, w.low, w.close) == (10.0, 13.0, 9.0, 11.0)
    assert w.price_return_pct == pytest.approx(10.0)
    # observations 10 13 9 11: mean 10.75, squared deviations 0.5625 5.0625 3.0625 0.0625
    assert w.volatility == pytest.approx(math.sqrt(8.75 / 3))
    assert w.tick_count == 1


def test_single_tick_has_no_volatility_and_all_null_volume_is_null(make_tick):
    w = summarize(
        "BTC", AssetType.CRYPTO, at_time("10:00"), at_time("10:05"), [make_tick("10:00", 5.0, None)]
    )
    assert w.volatility is None
    assert w.volume is None
    assert w.vwap is None
    assert w.price_return_pct == 0.0


def test_zero_volume_has_no_vwap(make_tick):
    ticks = [make_tick("10:00", 5.0, 0.0), make_tick("10:01", 6.0, 0.0)]
    w = summarize("X", AssetType.STOCK, at_time("10:00"), at_time("10:05"), ticks)
    assert w.volume == 0.0
    assert w.vwap is None


def test_sample_std_is_accurate_at_large_price_levels():
    # a naive sum-of-squares formula loses these digits at 1e9
    values = [1e9 + 1, 1e9 + 2, 1e9 + 3]
    assert sample_std(values) == pytest.approx(1.0, rel=1e-12)
    assert sample_std([1.0]) is None
