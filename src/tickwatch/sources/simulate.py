"""A reproducible synthetic market with labelled anomalies.

- Stocks trade in NYSE's regular sessions (`tickwatch.markets`: holidays and half days
  included); crypto trades around the clock.
- Prices are a random walk of log returns whose per-tick variance follows GARCH(1, 1)
  (sigma2 = omega + alpha * r_prev^2 + beta * sigma2_prev), so calm and wild stretches cluster.
- Each symbol ticks about `ticks_per_window` times per 5-minute window at random instants.
  Volume per tick is log-normal; stock volume follows the usual U shape over the session
  (three times the midday level at the open and the close).
- In each window a symbol may get one injected anomaly, written to the labels:
  price_spike (a jump of 8-14 window-sigmas that stays), volume_surge (volumes x 8-15) or
  volatility_burst (interior ticks shaken by 10-16 tick-sigmas; first and last ticks untouched,
  so the window's return is not disturbed).

The same seed, symbols and time range always give the same ticks and labels.
"""

from __future__ import annotations

import csv
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from tickwatch.markets import market_open
from tickwatch.model import SIMULATED_SOURCE, AnomalyType, AssetType, Tick
from tickwatch.records import tick_to_record
from tickwatch.sources import Record, SourceHealth

NEW_YORK = ZoneInfo("America/New_York")
WINDOW = timedelta(minutes=5)
SOURCE_NAME = SIMULATED_SOURCE

_BASE_PRICES = {
    "AAPL": 190.0, "MSFT": 410.0, "GOOGL": 140.0, "AMZN": 180.0, "TSLA": 240.0, "IBM": 170.0,
    "bitcoin": 60000.0, "ethereum": 3000.0, "solana": 150.0, "cardano": 0.45, "ripple": 0.55,
}  # fmt: skip
_DAILY_VOL = {AssetType.STOCK: 0.015, AssetType.CRYPTO: 0.03}
_WINDOWS_PER_DAY = {AssetType.STOCK: 78, AssetType.CRYPTO: 288}


@dataclass(frozen=True, slots=True)
class Label:
    symbol: str
    start: datetime
    end: datetime
    anomaly_type: AnomalyType


def _session_shape(moment: datetime) -> float:
    """Intraday volume multiplier: 3 at the open and close, 1 at midday."""
    local = moment.astimezone(NEW_YORK)
    minutes = local.hour * 60 + local.minute - (9 * 60 + 30)
    x = (minutes - 195) / 195
    return 1 + 2 * x * x


class _Series:
    """One symbol's price process."""

    def __init__(self, symbol: str, asset_type: AssetType, rng: np.random.Generator) -> None:
        self.symbol = symbol
        self.asset_type = asset_type
        self.price = _BASE_PRICES.get(symbol, float(rng.uniform(20, 500)))
        self.base_volume = 1000.0 if asset_type is AssetType.STOCK else 5.0
        window_sigma = _DAILY_VOL[asset_type] / math.sqrt(_WINDOWS_PER_DAY[asset_type])
        self.window_sigma = window_sigma
        self.alpha, self.beta = 0.06, 0.90
        self.base_var = window_sigma**2  # per window; per tick divides by ticks in the window
        self.var = self.base_var
        self.last_return = 0.0


class MarketSimulator:
    def __init__(
        self,
        stocks: Sequence[str],
        cryptos: Sequence[str],
        seed: int = 7,
        ticks_per_window: int = 20,
        anomaly_rate: float = 0.012,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.series = [_Series(s, AssetType.STOCK, self.rng) for s in stocks] + [
            _Series(c, AssetType.CRYPTO, self.rng) for c in cryptos
        ]
        self.ticks_per_window = ticks_per_window
        self.anomaly_rate = anomaly_rate
        self.labels: list[Label] = []

    def windows(self, start: datetime, end: datetime) -> Iterator[list[Tick]]:
        """Ticks of every symbol, one 5-minute window at a time, in event-time order."""
        t = datetime.fromtimestamp(start.timestamp() // 300 * 300, UTC)
        while t < end:
            ticks: list[Tick] = []
            for series in self.series:
                if series.asset_type is AssetType.STOCK and not market_open(t):
                    continue
                ticks.extend(self._window(series, t))
            ticks.sort(key=lambda tick: tick.event_time)
            yield ticks
            t += WINDOW

    def _window(self, s: _Series, start: datetime) -> list[Tick]:
        rng = self.rng
        n = max(3, int(rng.poisson(self.ticks_per_window)))
        offsets = np.sort(rng.choice(300_000, size=n, replace=False))  # distinct milliseconds
        anomaly: AnomalyType | None = None
        if rng.random() < self.anomaly_rate:
            anomaly = list(AnomalyType)[int(rng.integers(3))]
            self.labels.append(Label(s.symbol, start, start + WINDOW, anomaly))

        returns = np.empty(n)
        for i in range(n):  # GARCH(1, 1) per tick, scaled to the window
            s.var = (
                s.base_var * (1 - s.alpha - s.beta)
                + s.alpha * s.last_return**2 * n
                + (s.beta * s.var)
            )
            s.last_return = float(rng.normal(0, math.sqrt(s.var / n)))
            returns[i] = s.last_return
        returns[0] = 0.0  # the window opens where the last one closed
        if anomaly is AnomalyType.PRICE_SPIKE:
            jump = float(rng.uniform(8, 14)) * s.window_sigma * float(rng.choice([-1, 1]))
            returns[int(rng.integers(1, n))] += jump
        prices = s.price * np.exp(np.cumsum(returns))
        if anomaly is AnomalyType.VOLATILITY_BURST and n > 2:
            tick_sigma = s.window_sigma / math.sqrt(n)
            shake = rng.uniform(10, 16) * tick_sigma * rng.choice([-1.0, 1.0], size=n - 2)
            prices[1:-1] *= np.exp(shake)
        s.price = float(prices[-1])

        shape = _session_shape(start) if s.asset_type is AssetType.STOCK else 1.0
        volumes = s.base_volume * shape * rng.lognormal(0.0, 0.5, size=n)
        if anomaly is AnomalyType.VOLUME_SURGE:
            volumes *= rng.uniform(8, 15)

        ticks = []
        for offset, price, volume in zip(
            offsets.tolist(), prices.tolist(), volumes.tolist(), strict=True
        ):
            moment = start + timedelta(milliseconds=offset)
            ticks.append(
                Tick(
                    source=SOURCE_NAME,
                    asset_type=s.asset_type,
                    symbol=s.symbol,
                    event_time=moment,
                    ingest_time=moment,
                    price=round(price, 6),
                    volume=round(volume, 4),
                )
            )
        return ticks

    def write_labels(self, path: Path) -> None:
        """Labels as CSV `symbol,start,end,type`, the format `tickwatch evaluate` reads."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["symbol", "start", "end", "type"])
            for label in self.labels:
                writer.writerow(
                    [
                        label.symbol,
                        label.start.isoformat(),
                        label.end.isoformat(),
                        label.anomaly_type,
                    ]
                )


class SimulatedSource:
    """The simulator as a live source: `history` backfilled at once, then paced at `speed`
    until it reaches the present, then in real time.

    Simulated time starts at `start - history` and, after the backfill, runs `speed` times
    faster than the wall clock (at 60x a 5-minute window passes every 5 seconds) but never
    past the wall clock: a tick is emitted only once its event time has come, so simulated
    data is never "from the future" (skew checks, freshness and lag all read it as live).

    Resuming (a restart of `tickwatch run`): the market is generated again from the same seed
    and origin, so it follows the very same price path, and the ticks of each symbol before
    `skip[symbol]` (those the pipeline already has: stored windows and the tick log) are
    generated but not emitted. Starting from the newest stored window with a fresh random
    state instead would give the windows open at a crash a second, different price path.
    """

    name = "simulator"

    def __init__(
        self,
        simulator: MarketSimulator,
        start: datetime,
        history: timedelta,
        speed: float,
        monotonic: Callable[[], float] = time.monotonic,
        skip: Mapping[str, datetime] | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.simulator = simulator
        self.start = start
        self.history = history
        self.speed = speed
        self.monotonic = monotonic
        self.skip = dict(skip or {})
        self.wall = wall
        self.health = SourceHealth()

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]:
        far_future = self.start + timedelta(days=3650)
        began = self.monotonic()
        for ticks in self.simulator.windows(self.start - self.history, far_future):
            if stop.is_set():
                return
            if self.skip:
                ticks = [t for t in ticks if t.event_time >= self.skip.get(t.symbol, t.event_time)]
            if not ticks:
                continue
            for chunk in _chunks_by_time(ticks, timedelta(seconds=10)):
                ahead = (chunk[-1].event_time - self.start) / self.speed
                wait = ahead.total_seconds() - (self.monotonic() - began)
                early = (chunk[-1].event_time - self.wall()).total_seconds()
                wait = max(wait, early)
                if wait > 0 and stop.wait(wait):
                    return
                yield [tick_to_record(t) for t in chunk]


def _chunks_by_time(ticks: list[Tick], span: timedelta) -> Iterator[list[Tick]]:
    chunk: list[Tick] = []
    for tick in ticks:
        if chunk and tick.event_time - chunk[0].event_time >= span:
            yield chunk
            chunk = []
        chunk.append(tick)
    if chunk:
        yield chunk
