"""One series fed to a batch detector one window at a time, the way the engine feeds it."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from tickwatch.clock import micros
from tickwatch.engine.detectors import Baselines, Detector
from tickwatch.model import EPOCH, Feature, Score


class Feed:
    """A stock's (or crypto's) `feature` series: `score` judges a value against the values fed
    before it (at most `lookback`), then adds it, as the engine does for each closed window."""

    def __init__(
        self,
        detector: Detector,
        lookback: int = 20,
        feature: Feature = Feature.VOLUME,
        stock: bool = True,
    ) -> None:
        self.detector = detector
        self.k = list(Feature).index(feature)
        self.stock = stock
        self.history = [math.nan] * lookback

    def score(self, value: float | None, at: datetime = EPOCH) -> Score:
        x = math.nan if value is None else value
        history = np.full((len(self.history), 3, 1), math.nan)
        history[:, self.k, 0] = self.history
        values = np.full((3, 1), math.nan)
        values[self.k, 0] = x
        baselines = Baselines(
            history,
            values,
            np.zeros(1, np.int32),
            np.array([micros(at)], np.int64),
            np.array([self.stock]),
        )
        s = self.detector.score(baselines)
        self.history = [*self.history[1:], x]
        return Score(*(_opt(float(a[self.k, 0])) for a in (s.mean, s.std, s.z)))

    def learn(self, values: list[float | None], at: datetime = EPOCH) -> None:
        for value in values:
            self.score(value, at)


def _opt(value: float) -> float | None:
    return None if math.isnan(value) else value
