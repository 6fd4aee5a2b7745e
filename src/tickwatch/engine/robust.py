"""Robust baseline: median and scaled MAD over the same lookback as the z-score.

One outlier in the last 20 windows inflates their standard deviation for 20 windows and hides
the next outlier (masking). The median and the median absolute deviation ignore up to half of
the history, so a past spike does not move the baseline.

For the last `lookback` values x_1..x_n of a series (None values left out, current window
excluded):

    m   = median(x_i)
    MAD = median(|x_i - m|)
    s   = 1.4826 * MAD                 (1.4826 = 1 / Phi^-1(3/4): s = sigma for normal data)
    z   = (x - m) / s

so z is on the scale of a standard score and the shared severity bands apply unchanged.
Edge cases:

- fewer than `min_history` values: no score (NO_SCORE), as for the z-score;
- MAD = 0 (more than half of the values equal, e.g. a flat price): s falls back to
  1.253314 * mean(|x_i - m|) (1.253314 = sqrt(pi / 2): again s = sigma for normal data), the
  modified z-score's usual fallback (IBM SPSS Modeler, "Anomaly detection: modified z-score");
- that also 0 (all values equal) or x None: median and s reported, z None.

The anomaly row's `mean` and `std` columns carry m and s for this detector.

>>> from tickwatch.model import EPOCH
>>> s = RobustSeries(lookback=20, min_history=3)
>>> for v in (1.0, 2.0, 3.0, 100.0):
...     s.learn_one(v, EPOCH)
>>> s.score_one(2.5, EPOCH)  # m = 2.5, MAD = median(1.5, 0.5, 0.5, 97.5) = 1.0
Score(mean=2.5, std=1.4826, z=0.0)

Reference: Rousseeuw & Croux, "Alternatives to the Median Absolute Deviation", JASA 1993;
Iglewicz & Hoaglin, "How to Detect and Handle Outliers", 1993.
"""

from __future__ import annotations

import statistics
from datetime import datetime

from tickwatch.engine.detectors import ZScoreDetector, ZScoreSeries
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
