"""OHLCV and the three monitored features of many windows at once (DESIGN.md "Window").

Observations: a tick contributes its price, a delivered bar its open, high, low and close in
that order; within a window they are ordered by event time, then source name (a total order,
since a source sends one tick per symbol and event time), so arrival order never changes a
window.

- open / close: first / last observation; high / low: extremes.
- volume: sum of the ticks' volumes, null when every tick's volume is null.
- vwap: sum(price * volume) / sum(volume) over ticks with volume (a bar uses its close), null
  when that volume is null or 0.
- price_return_pct = (close - open) / open * 100.
- volatility: sample standard deviation (n - 1) of the observations, two-pass for accuracy at
  large price levels; null with fewer than two.

Missing values (null volume, no volatility) are NaN here and become None at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


@dataclass(slots=True)
class WindowColumns:
    """Closed windows, sorted by (symbol id, start); features as in DESIGN.md."""

    sym: I32
    start: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    tick_count: I64
    vwap: F64
    price_return_pct: F64
    volatility: F64

    def features(self) -> F64:
        """(3, G): price_return_pct, volume, volatility (the order of `model.Feature`)."""
        return np.stack([self.price_return_pct, self.volume, self.volatility])


def summarize(
    sym: I32, start: I64, price: F64, volume: F64, bar: tuple[F64, F64, F64, F64]
) -> WindowColumns:
    """Windows of ticks already sorted in observation order within (sym, start) groups."""
    m = len(sym)
    new = np.ones(m, bool)
    new[1:] = (sym[1:] != sym[:-1]) | (start[1:] != start[:-1])
    firsts = np.flatnonzero(new)
    groups = len(firsts)
    gid = np.cumsum(new) - 1

    is_bar = ~np.isnan(bar[0])
    if is_bar.any():  # a bar's four prices become four observations
        n_obs = np.where(is_bar, 4, 1)
        obs_tick = np.repeat(np.arange(m), n_obs)
        tick_first_obs = np.zeros(m, np.int64)
        np.cumsum(n_obs[:-1], out=tick_first_obs[1:])
        slot = np.arange(len(obs_tick)) - tick_first_obs[obs_tick]
        ohlc = np.stack(bar, axis=1)
        obs = np.where(is_bar[obs_tick], ohlc[obs_tick, np.minimum(slot, 3)], price[obs_tick])
        obs_gid = gid[obs_tick]
        obs_firsts = tick_first_obs[firsts]
    else:
        obs, obs_gid, obs_firsts = price, gid, firsts
    obs_count = np.bincount(obs_gid, minlength=groups)

    def total(values: F64, group: I64) -> F64:
        # float64 already with weights; the cast only informs the type checker
        return np.bincount(group, weights=values, minlength=groups).astype(np.float64, copy=False)

    has_volume = ~np.isnan(volume)
    volume_or_0 = np.where(has_volume, volume, 0.0)
    volume_sum = total(volume_or_0, gid)
    volume_sum[np.bincount(gid, has_volume, groups) == 0] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = total(price * volume_or_0, gid) / volume_sum
        vwap[~(volume_sum != 0)] = np.nan
        deviation = obs - total(obs, obs_gid)[obs_gid] / obs_count[obs_gid]
        volatility = np.sqrt(total(deviation * deviation, obs_gid) / (obs_count - 1))
    volatility[obs_count < 2] = np.nan
    open_, close = obs[obs_firsts], obs[obs_firsts + obs_count - 1]
    return WindowColumns(
        sym=sym[firsts],
        start=start[firsts],
        open=open_,
        high=np.maximum.reduceat(obs, obs_firsts),
        low=np.minimum.reduceat(obs, obs_firsts),
        close=close,
        volume=volume_sum,
        tick_count=np.bincount(gid, minlength=groups).astype(np.int64),
        vwap=vwap,
        price_return_pct=(close - open_) / open_ * 100,
        volatility=volatility,
    )
