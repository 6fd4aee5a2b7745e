"""A reproducible benchmark workload with the simulator's statistics, generated with numpy.

`tickwatch.sources.simulate.MarketSimulator` builds one Tick object at a time (about 100k ticks/s),
too slow to make millions of ticks for every benchmark run. This generator draws the same
process for all symbols at once: per 5-minute window each symbol ticks max(m, Poisson(k))
times at distinct random milliseconds (m = 3 dense, 1 bar-like, where a share of ticks is
also sent twice in a row); log returns follow GARCH(1, 1) (alpha 0.06, beta 0.90,
the simulator's window sigma for crypto, 3% a day); volumes are log-normal(0, 0.5) around 5;
with probability 0.012 a window carries one injected anomaly (price jump of 8-14 window sigmas,
volumes x 8-15, or interior ticks shaken by 10-16 tick sigmas). All symbols trade around the
clock (as crypto does in the simulator), so N symbols x D days give N x 288 x D windows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tickwatch.engine.batch import TickBatch

START_US = 1_709_510_400_000_000  # 2024-03-04T00:00:00Z
WINDOW_US = 300_000_000


@dataclass(frozen=True)
class Workload:
    symbols: int
    ticks: int
    days: float
    seed: int = 7
    min_ticks: int = 3  # per symbol-window
    duplicates: float = 0.0  # share of ticks sent twice in a row (a poll repeating a bar)

    @property
    def windows(self) -> int:
        return max(1, round(self.days * 288))

    @property
    def ticks_per_window(self) -> float:
        """The Poisson rate of ticks per symbol-window (before the `min_ticks` floor)."""
        return self.ticks / (self.symbols * self.windows)

    @property
    def mean_ticks(self) -> float:
        """E[max(m, Poisson(rate))] = rate + sum over k < m of (m - k) P(k), before repeats."""
        rate, m = self.ticks_per_window, self.min_ticks
        below = sum((m - k) * math.exp(-rate) * rate**k / math.factorial(k) for k in range(m))
        return rate + below

    def describe(self) -> str:
        repeated = f", {self.duplicates:.1%} of ticks sent twice" if self.duplicates else ""
        return (
            f"{self.symbols:,} symbols, {self.windows:,} windows ({self.days:g} days), "
            f"about {self.mean_ticks:.1f} ticks per symbol-window (at least "
            f"{self.min_ticks}){repeated}, seed {self.seed}"
        )


def dense(ticks: int = 2_000_000) -> Workload:
    """Crypto-like: 400 symbols trading around the clock, about 17 ticks per 5-minute window
    (2 M ticks make one day)."""
    return Workload(400, ticks, ticks / 2_000_000)


def bar_like(ticks: int = 2_000_000) -> Workload:
    """Like 5-minute stock bars: 1,000 symbols, about 1.7 ticks per window, and 0.2% of ticks
    repeated (Alpha Vantage returns the same bars on every poll). Poisson(1.47) with at least
    one tick averages 1.47 + e^-1.47 = 1.70 ticks per window."""
    windows = ticks / (1000 * 1.7)
    return Workload(1000, round(1000 * windows * 1.47), windows / 288, 7, 1, 0.002)


def generate(w: Workload) -> TickBatch:
    """All ticks of the workload in event-time order (ties by symbol)."""
    parts = list(window_parts(w))
    return TickBatch(
        parts[0].symbols,
        parts[0].sources,
        *(np.concatenate([getattr(p, c) for p in parts]) for c in _COLUMNS),
    )


_COLUMNS = (
    "symbol_code",
    "source_code",
    "asset_code",
    "event",
    "ingest",
    "price",
    "volume",
    "open",
    "high",
    "low",
    "close",
)


def window_parts(w: Workload) -> Iterator[TickBatch]:
    """The ticks of each 5-minute window in event-time order (ties by symbol)."""
    rng = np.random.default_rng(w.seed)
    s = w.symbols
    window_sigma = 0.03 / math.sqrt(288)
    alpha, beta = 0.06, 0.90
    price = rng.uniform(20, 500, s)
    var = np.full(s, window_sigma**2)
    last = np.zeros(s)
    names = [f"SYM{i:05d}" for i in range(s)]
    for k in range(w.windows):
        n = np.maximum(w.min_ticks, rng.poisson(w.ticks_per_window, s))
        width = int(n.max())
        live = np.arange(width)[None, :] < n[:, None]
        returns = np.zeros((s, width))
        for i in range(width):
            var = np.where(
                live[:, i],
                window_sigma**2 * (1 - alpha - beta) + alpha * last**2 * n + beta * var,
                var,
            )
            draw = rng.normal(0.0, 1.0, s) * np.sqrt(var / n)
            last = np.where(live[:, i], draw, last)
            returns[:, i] = np.where(live[:, i], draw, 0.0)
        returns[:, 0] = 0.0
        kind = np.where(rng.random(s) < 0.012, rng.integers(0, 3, s), -1)
        jump_at = rng.integers(1, np.maximum(n, 2))
        jump = rng.uniform(8, 14, s) * window_sigma * rng.choice([-1.0, 1.0], s)
        returns[np.arange(s), jump_at] += np.where(kind == 0, jump, 0.0)
        prices = price[:, None] * np.exp(np.cumsum(returns, axis=1))
        interior = (
            live & (np.arange(width)[None, :] > 0) & (np.arange(width)[None, :] < (n - 1)[:, None])
        )
        shake = rng.uniform(10, 16, (s, 1)) * (window_sigma / np.sqrt(n))[:, None]
        shake = shake * rng.choice([-1.0, 1.0], (s, width))
        prices = np.where(interior & (kind == 2)[:, None], prices * np.exp(shake), prices)
        price = prices[np.arange(s), n - 1]
        volumes = 5.0 * rng.lognormal(0.0, 0.5, (s, width))
        volumes *= np.where(kind == 1, rng.uniform(8, 15, s), 1.0)[:, None]
        offsets = np.sort(rng.integers(0, 300_000, (s, width)) - np.arange(width), axis=1)
        offsets = np.clip(offsets, 0, None) + np.arange(width)  # distinct, sorted ms
        offsets = np.where(offsets < 300_000, offsets, 299_999 - (width - 1 - np.arange(width)))
        sym = np.broadcast_to(np.arange(s, dtype=np.int32)[:, None], (s, width))
        event = START_US + k * WINDOW_US + offsets * 1000
        sym_w, event_w = sym[live], event[live]
        order = np.lexsort((sym_w, event_w))
        if w.duplicates:  # each repeat right after its original: same source, symbol, time
            order = np.repeat(order, 1 + (rng.random(len(order)) < w.duplicates))
        count = len(order)
        nan = np.full(count, np.nan)
        yield TickBatch(
            symbols=names,
            sources=["simulator"],
            symbol_code=sym_w[order],
            source_code=np.zeros(count, np.int32),
            asset_code=np.ones(count, np.int8),
            event=event_w[order],
            ingest=event_w[order],
            price=np.round(prices[live], 6)[order],
            volume=np.round(volumes[live], 4)[order],
            open=nan,
            high=nan,
            low=nan,
            close=nan,
        )


def slices(batch: TickBatch, size: int) -> list[TickBatch]:
    """Micro-batches of `size` rows, in order (views, no copies)."""
    out = []
    for a in range(0, len(batch), size):
        part = slice(a, a + size)
        out.append(
            TickBatch(
                batch.symbols,
                batch.sources,
                batch.symbol_code[part],
                batch.source_code[part],
                batch.asset_code[part],
                batch.event[part],
                batch.ingest[part],
                batch.price[part],
                batch.volume[part],
                batch.open[part],
                batch.high[part],
                batch.low[part],
                batch.close[part],
            )
        )
    return out


def write_jsonl(batch: TickBatch, path: Path) -> None:
    """The replay format (`records.tick_to_record`), one JSON object a line."""
    times = np.datetime_as_string(batch.event.astype("datetime64[us]"), unit="us")
    names = np.array(batch.symbols)[batch.symbol_code]
    with path.open("w") as handle:
        for name, t, p, v in zip(
            names.tolist(), times.tolist(), batch.price.tolist(), batch.volume.tolist(), strict=True
        ):
            handle.write(
                f'{{"source":"simulator","asset_type":"crypto","symbol":"{name}",'
                f'"event_time":"{t}+00:00","ingest_time":"{t}+00:00","price":{p!r},'
                f'"volume":{v!r}}}\n'
            )
