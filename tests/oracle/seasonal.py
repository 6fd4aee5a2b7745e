"""The oracle's seasonal baseline (time-of-day profiles for stock volume and volatility), one
value at a time; the definition is in `tickwatch/engine/detectors/seasonal.py`.

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

from tests.oracle.detectors import SeriesDetector, ZScoreSeries, standard_score
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
        score = standard_score(adjusted, None if value is None else value / own)
        assert score.mean is not None and score.std is not None
        return Score(score.mean * own, score.std * own, score.z)

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
