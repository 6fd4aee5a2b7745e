"""The oracle's robust baseline (median and 1.4826 x MAD, mean-absolute-deviation fallback),
one value at a time; the definition and its references are in
`tickwatch/engine/detectors/robust.py`.
"""

from __future__ import annotations

import statistics
from datetime import datetime

from tests.oracle.detectors import ZScoreDetector, ZScoreSeries
from tickwatch.model import NO_SCORE, AssetType, Feature, Score

MAD_SCALE = 1.4826
MEAN_AD_SCALE = 1.253314


class RobustSeries(ZScoreSeries):
    """Median / scaled-MAD score over the previous `lookback` windows of one series.

    The history (and `learn_one`) is the z-score's; only the statistics differ.
    """

    __slots__ = ()

    def score_one(self, value: float | None, at: datetime) -> Score:
        values = [v for v in self.history if v is not None]
        if len(values) < self.min_history:
            return NO_SCORE
        center = statistics.median(values)
        deviations = [abs(v - center) for v in values]
        scale = MAD_SCALE * statistics.median(deviations)
        if scale == 0:
            scale = MEAN_AD_SCALE * statistics.fmean(deviations)
        if value is None or scale == 0:
            return Score(center, scale, None)
        return Score(center, scale, (value - center) / scale)


class RobustDetector(ZScoreDetector):
    """`DETECTOR=robust`: the same lookback and minimum history as `zscore`, robust statistics."""

    name = "robust"

    def series(self, symbol: str, asset_type: AssetType, feature: Feature) -> RobustSeries:
        return RobustSeries(self.lookback, self.min_history)
