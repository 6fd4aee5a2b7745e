"""Window features and z-scores for many windows at once (the columnar engine's arithmetic).

The same definitions as `features.summarize` and `detectors.ZScoreSeries`, written over arrays:
sums use `exactsum` so every value rounds as the reference's `math.fsum` does. Missing values
(null volume, no volatility, no history) are NaN here and become None at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tickwatch.engine.exactsum import fsum_first_axis, segment_fsum

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]


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
    if is_bar.any():
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
    obs_last = obs_firsts + obs_count - 1

    has_volume = ~np.isnan(volume)
    volume_or_0 = np.where(has_volume, volume, 0.0)
    volume_sum = segment_fsum(volume_or_0, gid, groups)
    volume_sum[np.bincount(gid, has_volume, groups) == 0] = np.nan
    pv = segment_fsum(np.where(has_volume, price * volume_or_0, 0.0), gid, groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = np.where((volume_sum != 0) & ~np.isnan(volume_sum), pv / volume_sum, np.nan)
        obs_mean = segment_fsum(obs, obs_gid, groups) / obs_count
        deviation = obs - obs_mean[obs_gid]
        squares = deviation * deviation  # exactly rounded, as `features.sample_std`
        volatility = np.sqrt(segment_fsum(squares, obs_gid, groups) / (obs_count - 1))
    volatility[obs_count < 2] = np.nan
    open_, close = obs[obs_firsts], obs[obs_last]
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


@dataclass(slots=True)
class Scores:
    """(3, G) arrays; NaN where the reference has None."""

    mean: F64
    std: F64
    z: F64


def score(sym: I32, values: F64, history: F64, min_history: int) -> tuple[Scores, F64]:
    """Score windows sorted by (sym, start) against each symbol's previous windows.

    `history[i]` is (3, lookback): symbol i's last `lookback` feature values, oldest first,
    NaN for null or not yet seen. A window's baseline is the `lookback` values before it,
    counting earlier windows of the same batch. Returns the scores and each touched
    symbol's new history (rows in order of `np.unique(sym)`).
    """
    lookback = history.shape[-1]
    g = len(sym)
    symbols, first, counts = np.unique(sym, return_index=True, return_counts=True)
    block = lookback + counts
    offsets = np.zeros(len(symbols), np.int64)
    np.cumsum(block[:-1], out=offsets[1:])
    flat = np.empty((3, int(block.sum())))
    hist_pos = offsets[:, None] + np.arange(lookback)
    flat[:, hist_pos] = history.transpose(1, 0, 2)
    owner = np.repeat(np.arange(len(symbols)), counts)
    rank = np.arange(g) - first[owner]
    pos = offsets[owner] + lookback + rank
    flat[:, pos] = values
    base = flat[:, np.arange(lookback)[:, None] + (pos - lookback)].transpose(1, 0, 2)
    new_history = flat[:, offsets[:, None] + counts[:, None] + np.arange(lookback)]

    present = ~np.isnan(base)  # base is (lookback, 3, G): term k of every baseline
    count = present.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = fsum_first_axis(np.where(present, base, 0.0)) / count
        deviation = base - mean
        squares = np.where(present, deviation * deviation, 0.0)
        std = np.sqrt(fsum_first_axis(squares) / (count - 1))
        enough = count >= min_history
        mean = np.where(enough, mean, np.nan)
        std = np.where(enough, std, np.nan)
        z = np.where(enough & (std != 0), (values - mean) / std, np.nan)
    return Scores(mean, std, z), new_history.transpose(1, 0, 2)


def severity_codes(z: F64, threshold: float, medium: float, high: float) -> I8:
    """0 none, 1 low, 2 medium, 3 high (`model.severity_of` over arrays; NaN is none)."""
    magnitude = np.abs(np.nan_to_num(z, nan=0.0))
    codes = np.where(magnitude <= medium, 1, np.where(magnitude <= high, 2, 3))
    return np.where(magnitude <= threshold, 0, codes).astype(np.int8)
