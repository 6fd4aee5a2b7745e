"""Seasonal baseline (`DETECTOR=seasonal`): a stock's volume and volatility judged relative to
its time of day.

Stock volume is U-shaped over the session (heavy at the open and the close, light at midday),
so a rolling baseline over the last 20 windows lags the shape: the ramp into the close keeps
exceeding the quieter windows before it, and in markets where the open is heavier than the
previous close, every open looks like a surge. This detector removes the time-of-day profile
before taking the rolling z-score, so the open is measured in "opens" and the close in
"closes".

For a stock's `volume` and `volatility` series, the slot of a window is its start as local
exchange time of day (hour, minute in `timezone`, default America/New_York, so daylight
saving does not shift the slots). The slot's profile P_s is the mean of that slot's values on
the previous `lookback_days` trading days that had it (nulls left out); it exists once the slot
has `min_history` such values. With h_1..h_n the previous `lookback` windows (as for the
z-score) and s_i their slots:

    a_i  = h_i / P_{s_i}                       (each past window in units of its slot's norm)
    m, d = mean and sample std (n - 1) of a_i
    z    = (x / P_s - m) / d                   (s = the current window's slot)

reported as mean = m * P_s and std = d * P_s, so value, mean and std share the feature's unit
and z = (value - mean) / std as for every detector. When the current slot or any slot of the
history has no profile yet (the first `min_history` trading days, a new symbol, a restart) or
a profile is 0, the score is exactly the rolling z-score of the raw values. Fewer than
`min_history` values, d = 0 and x null behave as in the z-score (`zscore.standard_score`).

Days without a session (weekends, holidays) have no windows, so they are skipped, not filled.
Price return and every crypto series (crypto trades around the clock with no session) use the
rolling z-score unchanged.

The profiles are state: the detector must see every window once, in order (the engine does
that, restores included).
"""

from __future__ import annotations

import math
from collections import deque
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from tickwatch.clock import from_micros
from tickwatch.engine.detectors.base import Baselines, Scores
from tickwatch.engine.detectors.zscore import standard_score
from tickwatch.model import Feature

NEW_YORK = ZoneInfo("America/New_York")
SEASONAL_FEATURES = tuple(
    k for k, f in enumerate(Feature) if f in (Feature.VOLUME, Feature.VOLATILITY)
)

Slot = tuple[int, int]


@lru_cache(maxsize=65_536)
def slot_of(start_us: int, timezone: ZoneInfo) -> Slot:
    """A window's local time of day (hour, minute) in `timezone`."""
    local = from_micros(start_us).astimezone(timezone)
    return local.hour, local.minute


class SeasonalDetector:
    """Time-of-day adjusted z-scores for stock volume and volatility, plain z-scores else."""

    name = "seasonal"

    def __init__(
        self,
        lookback: int = 20,
        min_history: int = 5,
        lookback_days: int | None = None,
        timezone: ZoneInfo = NEW_YORK,
    ) -> None:
        self.lookback = lookback
        self.min_history = min_history
        self.lookback_days = lookback_days or lookback
        self.timezone = timezone
        self._recent: dict[int, deque[Slot]] = {}  # slots of a stock's last `lookback` windows
        self._by_slot: dict[tuple[int, int, Slot], deque[float]] = {}  # NaN for null
        self._profile: dict[tuple[int, int, Slot], float] = {}

    def score(self, baselines: Baselines) -> Scores:
        plain = standard_score(baselines.history, baselines.values, self.min_history)
        found = self._profiles(baselines)
        if not found:
            return plain
        history, values = baselines.history, baselines.values
        k, i, own, norms = (np.array(column) for column in zip(*found, strict=True))
        adjusted = standard_score(history[:, k, i] / norms.T, values[k, i] / own, 0)
        mean, std, z = (a.copy() for a in (plain.mean, plain.std, plain.z))
        enough = (~np.isnan(history[:, k, i])).sum(axis=0) >= self.min_history
        mean[k, i] = np.where(enough, adjusted.mean * own, np.nan)
        std[k, i] = np.where(enough, adjusted.std * own, np.nan)
        z[k, i] = np.where(enough, adjusted.z, np.nan)
        return Scores(mean, std, z)

    def _profiles(self, baselines: Baselines) -> list[tuple[int, int, float, list[float]]]:
        """Walk the stock windows in order: for each seasonal series that has every profile
        it needs, (feature, window, own profile, the history's profiles); learn each window."""
        found = []
        history, values = baselines.history, baselines.values
        rows = np.flatnonzero(baselines.stock).tolist()
        for i, sym, start in zip(
            rows, baselines.sym[rows].tolist(), baselines.start[rows].tolist(), strict=True
        ):
            slot = slot_of(start, self.timezone)
            recent = self._recent.setdefault(sym, deque(maxlen=self.lookback))
            before = [None] * (self.lookback - len(recent)) + list(recent)
            for k in SEASONAL_FEATURES:
                norms = self._norms(sym, k, slot, before, history[:, k, i].tolist())
                if norms is not None:
                    found.append((k, i, norms[0], norms[1:]))
            for k in SEASONAL_FEATURES:
                self._learn(sym, k, slot, float(values[k, i]))
            recent.append(slot)
        return found

    def _norms(
        self, sym: int, k: int, slot: Slot, before: list[Slot | None], past: list[float]
    ) -> list[float] | None:
        """[own profile, profile of each history window's slot (NaN where null)], or None
        when one of them is missing or 0 (then the plain z-score applies)."""
        own = self._profile.get((sym, k, slot))
        if not own:
            return None
        norms = [own]
        for value, seen in zip(past, before, strict=True):
            if math.isnan(value):
                norms.append(math.nan)
                continue
            norm = self._profile.get((sym, k, seen)) if seen is not None else None
            if not norm:
                return None
            norms.append(norm)
        return norms

    def _learn(self, sym: int, k: int, slot: Slot, value: float) -> None:
        key = (sym, k, slot)
        days = self._by_slot.get(key)
        if days is None:
            days = self._by_slot[key] = deque(maxlen=self.lookback_days)
        days.append(value)
        present = [v for v in days if not math.isnan(v)]
        if len(present) >= self.min_history:
            self._profile[key] = sum(present) / len(present)
