"""The oracle's detectors: a baseline per (symbol, feature) series that scores one value.

Every detector follows one tiny online interface (after river's `learn_one` / `score_one`):
`score_one` judges a value against the history so far (the current window excluded), then
`learn_one` adds it. The engine maps |z| to severity with the shared bands, so a detector only
has to produce a z comparable to a standard score.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime
from typing import Protocol

from tests.oracle.features import sample_std
from tickwatch.errors import ConfigError
from tickwatch.model import NO_SCORE, AssetType, Feature, Score


def standard_score(values: list[float], value: float | None) -> Score:
    """mean, sample std and z of `value` against `values`; a std of at most
    1e-9 x max(|mean|, 1e-300) counts as 0 (reported as 0, no z)."""
    mean = math.fsum(values) / len(values)
    std = sample_std(values)
    assert std is not None
    if std <= 1e-9 * max(abs(mean), 1e-300):
        return Score(mean, 0.0, None)
    if value is None:
        return Score(mean, std, None)
    return Score(mean, std, (value - mean) / std)


class SeriesDetector(Protocol):
    """The baseline of one (symbol, feature) series; `at` is the window's start."""

    def score_one(self, value: float | None, at: datetime) -> Score: ...

    def learn_one(self, value: float | None, at: datetime) -> None: ...


class Detector(Protocol):
    name: str

    def series(self, symbol: str, asset_type: AssetType, feature: Feature) -> SeriesDetector: ...


class ZScoreSeries:
    """Rolling z-score over the previous `lookback` windows.

    mean and std (sample, n - 1) of the last `lookback` values, None values left out;
    z = (x - mean) / std. No score with fewer than `min_history` values (NO_SCORE), or when
    std counts as 0 or x is None (mean and std reported, z None).

    >>> s = ZScoreSeries(lookback=20, min_history=3)
    >>> for v in (1.0, 2.0, 3.0):
    ...     s.learn_one(v, EPOCH)
    >>> s.score_one(5.0, EPOCH)
    Score(mean=2.0, std=1.0, z=3.0)
    """

    __slots__ = ("history", "min_history")

    def __init__(self, lookback: int, min_history: int) -> None:
        self.history: deque[float | None] = deque(maxlen=lookback)
        self.min_history = min_history

    def score_one(self, value: float | None, at: datetime) -> Score:
        values = [v for v in self.history if v is not None]
        if len(values) < self.min_history:
            return NO_SCORE
        return standard_score(values, value)

    def learn_one(self, value: float | None, at: datetime) -> None:
        self.history.append(value)


class ZScoreDetector:
    """The reference detector (DESIGN.md "Baseline and score")."""

    name = "zscore"

    def __init__(self, lookback: int = 20, min_history: int = 5) -> None:
        self.lookback = lookback
        self.min_history = min_history

    def series(self, symbol: str, asset_type: AssetType, feature: Feature) -> ZScoreSeries:
        return ZScoreSeries(self.lookback, self.min_history)


def make_detector(name: str, lookback: int, min_history: int) -> Detector:
    """The detector chosen by the DETECTOR setting."""
    # Imported here: both build on ZScoreSeries from this module.
    from tests.oracle.robust import RobustDetector
    from tests.oracle.seasonal import SeasonalDetector

    if name == "zscore":
        return ZScoreDetector(lookback, min_history)
    if name == "robust":
        return RobustDetector(lookback, min_history)
    if name == "seasonal":
        return SeasonalDetector(lookback, min_history)
    raise ConfigError(f"DETECTOR: unknown detector {name!r}; choose {', '.join(DETECTORS)}")


DETECTORS = ("zscore", "robust", "seasonal")
