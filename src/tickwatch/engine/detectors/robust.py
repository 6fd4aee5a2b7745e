"""Robust baseline (`DETECTOR=robust`): median and scaled MAD over the z-score's lookback.

One outlier in the last 20 windows inflates their standard deviation for 20 windows and hides
the next outlier (masking). The median and the median absolute deviation ignore up to half of
the history, so a past spike does not move the baseline.

For the last `lookback` values x_1..x_n of a series (nulls left out, current window excluded):

    m   = median(x_i)
    MAD = median(|x_i - m|)
    s   = 1.4826 * MAD                 (1.4826 = 1 / Phi^-1(3/4): s = sigma for normal data)
    z   = (x - m) / s

so z is on the scale of a standard score and the shared severity bands apply unchanged.
Edge cases:

- fewer than `min_history` values: no baseline and no score, as for the z-score;
- MAD = 0 (more than half of the values equal, e.g. a flat price): s falls back to
  1.253314 * mean(|x_i - m|) (1.253314 = sqrt(pi / 2): again s = sigma for normal data), the
  modified z-score's usual fallback (IBM SPSS Modeler, "Anomaly detection: modified z-score");
- that also 0 (all values equal) or x null: median and s reported, no z.

The anomaly row's `mean` and `std` columns carry m and s for this detector.

>>> import numpy as np
>>> from tickwatch.engine.detectors.base import Baselines
>>> history = np.array([1.0, 2.0, 3.0, 100.0])[:, None, None]
>>> one = np.zeros(1, np.int32), np.zeros(1, np.int64), np.ones(1, bool)
>>> s = RobustDetector(min_history=3).score(Baselines(history, np.array([[2.5]]), *one))
>>> float(s.mean[0, 0]), float(s.std[0, 0]), float(s.z[0, 0])  # MAD = median(1.5, .5, .5, 97.5)
(2.5, 1.4826, 0.0)

Reference: Rousseeuw & Croux, "Alternatives to the Median Absolute Deviation", JASA 1993;
Iglewicz & Hoaglin, "How to Detect and Handle Outliers", 1993.
"""

from __future__ import annotations

import numpy as np

from tickwatch.engine.detectors.base import Baselines, Scores

MAD_SCALE = 1.4826
MEAN_AD_SCALE = 1.253314


class RobustDetector:
    """Median / scaled-MAD score over the previous windows of each series."""

    name = "robust"

    def __init__(self, min_history: int = 5) -> None:
        self.min_history = min_history

    def score(self, baselines: Baselines) -> Scores:
        history, values = baselines.history, baselines.values
        center = np.full(values.shape, np.nan)
        scale = np.full(values.shape, np.nan)
        enough = (~np.isnan(history)).sum(axis=0) >= self.min_history
        if enough.any():  # nanmedian warns on an all-NaN series: only those with a baseline
            past = history[:, enough]
            center[enough] = np.nanmedian(past, axis=0)
            deviations = np.abs(past - center[enough])
            mad = MAD_SCALE * np.nanmedian(deviations, axis=0)
            scale[enough] = np.where(mad == 0, MEAN_AD_SCALE * np.nanmean(deviations, axis=0), mad)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            z = np.where(scale != 0, (values - center) / scale, np.nan)
        return Scores(center, scale, z)
