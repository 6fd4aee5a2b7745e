"""Seasonal baseline: a stock's volume and volatility judged relative to its time of day.

Stock volume is U-shaped over the session (heavy at the open and the close, light at midday),
so a rolling baseline over the last 20 windows lags the shape: the ramp into the close keeps
exceeding the quieter windows before it, and in markets where the open is heavier than the
previous close, every open looks like a surge. This detector removes the time-of-day profile
before taking the rolling z-score, so the open is measured in "opens" and the close in
"closes".

For a stock's `volume` and `volatility` series, the slot of a window is its start as local
exchange time of day (hour, minute in `timezone`, default America/New_York, so daylight
saving does not shift the slots). The slot's profile P_s is the mean of that slot's values on
the previous `lookback_days` trading days that had it (None left out); it exists once the slot
has `min_history` such values. With h_1..h_n the previous `lookback` windows (as for the
z-score) and s_i their slots:

    a_i  = h_i / P_{s_i}                       (each past window in units of its slot's norm)
    m, d = mean and sample std (n - 1) of a_i
    z    = (x / P_s - m) / d                   (s = the current window's slot)

reported as mean = m * P_s and std = d * P_s, so value, mean and std share the feature's unit
and z = (value - mean) / std as for every detector. When the current slot or any slot of the
history has no profile yet (the first `min_history` trading days, a new symbol, a restart) or
a profile is 0, the score is exactly the rolling z-score (ZScoreSeries) of the raw values.
Fewer than `min_history` values, d = 0 and x None behave as in the z-score.

Days without a session (weekends, holidays) have no windows, so they are skipped, not filled.
Price return and every crypto series (crypto trades around the clock with no session) use the
rolling z-score unchanged.

>>> from datetime import UTC, datetime
>>> s = SeasonalSeries(lookback=20, min_history=2, lookback_days=20)
>>> for day in (4, 5):  # 09:30 (open, volume 3000) and 09:35 (1000) in New York
...     s.learn_one(3000.0, datetime(2024, 3, day, 14, 30, tzinfo=UTC))
...     s.learn_one(1000.0, datetime(2024, 3, day, 14, 35, tzinfo=UTC))
>>> s.score_one(3000.0, datetime(2024, 3, 6, 14, 30, tzinfo=UTC)).z is None  # all a_i = 1: d = 0
True
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from zoneinfo import ZoneInfo

from tickwatch.engine.detectors import SeriesDetector, ZScoreSeries
from tickwatch.engine.features import sample_std
from tickwatch.model import NO_SCORE, AssetType, Feature, Score

NEW_YORK = ZoneInfo("America/New_York")
SEASONAL_FEATURES = frozenset({Feature.VOLUME, Feature.VOLATILITY})

Slot = tuple[int, int]


class SeasonalSeries:
    """Rolling z-score of values divided by their time-of-day slot's mean over past days."""

    __slots__ = (
        "by_slot",
        "lookback_days",
        "min_history",
        "profile",
        "recent",
        "rolling",
        "timezone",
    )

    def __init__(
        self,
        lookback: int,
        min_history: int,
        lookback_days: int,
        timezone: ZoneInfo = NEW_YORK,
    ) -> None:
        self.rolling = ZScoreSeries(lookback, min_history)
        self.recent: deque[tuple[Slot, float | None]] = deque(maxlen=lookback)
        self.by_slot: dict[Slot, deque[float | None]] = {}
        self.profile: dict[Slot, float] = {}
        self.min_history = min_history
        self.timezone = timezone
        self.lookback_days = lookback_days

    def slot(self, at: datetime) -> Slot:
        local = at.astimezone(self.timezone)
        return local.hour, local.minute

    def score_one(self, value: float | None, at: datetime) -> Score:
        own = self.profile.get(self.slot(at))
        adjusted = self._adjusted_history() if own else None
        if own is None or adjusted is None:
            return self.rolling.score_one(value, at)
        if len(adjusted) < self.min_history:
            return NO_SCORE
        mean = math.fsum(adjusted) / len(adjusted)
        std = sample_std(adjusted)
        assert std is not None
        if value is None or std == 0:
            return Score(mean * own, std * own, None)
        return Score(mean * own, std * own, (value / own - mean) / std)

    def _adjusted_history(self) -> list[float] | None:
        adjusted = []
        for slot, past in self.recent:
            if past is None:
                continue
            norm = self.profile.get(slot)
            if not norm:
                return None
            adjusted.append(past / norm)
        return adjusted

    def learn_one(self, value: float | None, at: datetime) -> None:
        self.rolling.learn_one(value, at)
        slot = self.slot(at)
        self.recent.append((slot, value))
        history = self.by_slot.get(slot)
        if history is None:
            history = self.by_slot[slot] = deque(maxlen=self.lookback_days)
        history.append(value)
        values = [v for v in history if v is not None]
        if len(values) >= self.min_history:
            self.profile[slot] = math.fsum(values) / len(values)


class SeasonalDetector:
    """`DETECTOR=seasonal`: time-of-day adjusted baselines for stock volume and volatility."""

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

    def series(self, symbol: str, asset_type: AssetType, feature: Feature) -> SeriesDetector:
        if asset_type is AssetType.STOCK and feature in SEASONAL_FEATURES:
            return SeasonalSeries(
                self.lookback, self.min_history, self.lookback_days, self.timezone
            )
        return ZScoreSeries(self.lookback, self.min_history)
