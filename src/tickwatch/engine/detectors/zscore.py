"""The z-score detector (`DETECTOR=zscore`, the default): DESIGN.md "Baseline and score".

For the last `lookback` values x_1..x_n of a series (nulls left out, current window excluded):

    mean = sum(x_i) / n
    std  = sqrt(sum((x_i - mean)^2) / (n - 1))        (sample standard deviation)
    z    = (x - mean) / std

Edge cases: fewer than `min_history` values: no baseline and no score; a deviation of at most
1e-9 x |mean| (with |mean| floored at 1e-300) counts as 0 and is reported as 0, with no z, so
float rounding on a constant series never yields a z; x null: mean and std, no z.

>>> import numpy as np
>>> history = np.array([1.0, 2.0, 3.0])[:, None, None]  # 3 windows, 1 feature, 1 series
>>> s = standard_score(history, np.array([[5.0]]), min_history=3)
>>> float(s.mean[0, 0]), float(s.std[0, 0]), float(s.z[0, 0])
(2.0, 1.0, 3.0)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tickwatch.engine.detectors.base import Baselines, Scores

F64 = npt.NDArray[np.float64]
ZERO_DEVIATION = 1e-9  # relative to |mean|: a smaller std is rounding, not variation


def standard_score(history: F64, values: F64, min_history: int) -> Scores:
    """Mean, sample std and z of `values` against `history` (its first axis), NaN-aware."""
    present = ~np.isnan(history)
    count = present.sum(axis=0)
    enough = count >= min_history
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean = np.where(present, history, 0.0).sum(axis=0) / count
        deviation = np.where(present, history - mean, 0.0)
        std = np.sqrt((deviation * deviation).sum(axis=0) / (count - 1))
        flat = std <= ZERO_DEVIATION * np.maximum(np.abs(mean), 1e-300)
        std = np.where(flat, 0.0, std)
        z = (values - mean) / std
    mean = np.where(enough, mean, np.nan)
    std = np.where(enough, std, np.nan)
    z = np.where(enough & ~flat, z, np.nan)
    return Scores(mean, std, z)


class ZScoreDetector:
    """Rolling mean and sample standard deviation of the previous windows."""

    name = "zscore"

    def __init__(self, min_history: int = 5) -> None:
        self.min_history = min_history

    def score(self, baselines: Baselines) -> Scores:
        return standard_score(baselines.history, baselines.values, self.min_history)
