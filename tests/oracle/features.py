"""The oracle's OHLCV and the three monitored features of one window (Tick objects).

Observations: a tick contributes its price, a delivered bar its open, high, low and close in that
order; observations are ordered by event time, then source name (a total order, since a source
sends one tick per symbol and event time), so arrival order never changes a window.

- open / close: first / last observation; high / low: extremes.
- volume: sum of the ticks' volumes, None when every tick's volume is None.
- vwap: sum(price * volume) / sum(volume) over ticks with volume (a bar uses its close), None
  when that volume is None or 0.
- price_return_pct = (close - open) / open * 100.
- volatility: sample standard deviation (n - 1) of the observations; None with fewer than two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from tickwatch.model import AssetType, Tick, Window


def sample_std(values: Sequence[float]) -> float | None:
    """Sample standard deviation, two-pass for accuracy at large price levels."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def summarize(
    symbol: str,
    asset_type: AssetType,
    start: datetime,
    end: datetime,
    ticks: Sequence[Tick],
) -> Window:
    """The window of `ticks`, which must already be in observation order."""
    observations = [price for tick in ticks for price in tick.observations()]
    volumes = [(tick.price, tick.volume) for tick in ticks if tick.volume is not None]
    volume = math.fsum(v for _, v in volumes) if volumes else None
    vwap = math.fsum(p * v for p, v in volumes) / volume if volume else None
    open_, close = observations[0], observations[-1]
    return Window(
        symbol=symbol,
        asset_type=asset_type,
        window_start=start,
        window_end=end,
        open=open_,
        high=max(observations),
        low=min(observations),
        close=close,
        volume=volume,
        tick_count=len(ticks),
        vwap=vwap,
        price_return_pct=(close - open_) / open_ * 100,
        volatility=sample_std(observations),
    )
