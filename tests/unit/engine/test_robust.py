"""Robust detector: median / 1.4826 MAD, its fallbacks, and masking compared with the z-score."""

from __future__ import annotations

import statistics

import pytest

from tickwatch.engine.detectors import ZScoreSeries, make_detector
from tickwatch.engine.robust import RobustDetector, RobustSeries
from tickwatch.model import EPOCH, NO_SCORE, AssetType, Feature


def fed(series: RobustSeries | ZScoreSeries, values: list[float | None]) -> None:
    for value in values:
        series.learn_one(value, EPOCH)


def test_median_and_scaled_mad_by_hand() -> None:
    s = RobustSeries(lookback=20, min_history=5)
    fed(s, [10.0, 12.0, 11.0, 13.0, 50.0])
    # median 12; |x - 12| = 2, 0, 1, 1, 38 -> median 1; s = 1.4826
    score = s.score_one(20.0, EPOCH)
    assert score.mean == 12.0
    assert score.std == pytest.approx(1.4826)
    assert score.z == pytest.approx(8 / 1.4826)


def test_zero_mad_falls_back_to_mean_absolute_deviation() -> None:
    s = RobustSeries(lookback=20, min_history=5)
    fed(s, [5.0, 5.0, 5.0, 6.0, 9.0])
    # median 5; |x - 5| = 0, 0, 0, 1, 4: MAD 0, mean 1 -> s = 1.253314
    score = s.score_one(8.0, EPOCH)
    assert score.std == pytest.approx(1.253314)
    assert score.z == pytest.approx(3 / 1.253314)


def test_all_equal_history_has_no_z() -> None:
    s = RobustSeries(lookback=20, min_history=5)
    fed(s, [5.0] * 6)
    score = s.score_one(9.0, EPOCH)
    assert (score.mean, score.std, score.z) == (5.0, 0.0, None)


def test_too_few_values_and_nones_left_out() -> None:
    s = RobustSeries(lookback=20, min_history=5)
    fed(s, [1.0, None, 2.0, None, 3.0, 4.0])
    assert s.score_one(100.0, EPOCH) == NO_SCORE
    s.learn_one(5.0, EPOCH)
    assert s.score_one(3.0, EPOCH).mean == 3.0  # median of 1..5


def test_lookback_drops_the_oldest() -> None:
    s = RobustSeries(lookback=5, min_history=5)
    fed(s, [1000.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.score_one(3.0, EPOCH).mean == 3.0


def test_masking_under_zscore_not_under_robust() -> None:
    """A first spike inflates the z-score's deviation and hides the second; not the MAD's."""
    calm = [0.1, -0.1] * 10
    zscore, robust = ZScoreSeries(20, 5), RobustSeries(20, 5)
    for series in (zscore, robust):
        fed(series, calm)
        first = series.score_one(5.0, EPOCH)
        assert first.z is not None and first.z > 3  # both see the first spike
        series.learn_one(5.0, EPOCH)

    history = [*calm[1:], 5.0]  # the oldest 0.1 left the 20-window lookback
    mean, std = statistics.mean(history), statistics.stdev(history)
    masked = zscore.score_one(2.0, EPOCH)
    assert masked.z == pytest.approx((2.0 - mean) / std)
    assert masked.z is not None and masked.z < 3  # the second spike is missed

    # sorted: ten -0.1, nine 0.1, 5.0 -> median 0; deviations nineteen 0.1 and 4.9 -> MAD 0.1
    seen = robust.score_one(2.0, EPOCH)
    assert seen.mean == pytest.approx(0.0)
    assert seen.z == pytest.approx(2.0 / (1.4826 * 0.1))


def test_registered_by_name() -> None:
    detector = make_detector("robust", 20, 5)
    assert isinstance(detector, RobustDetector)
    assert isinstance(detector.series("AAPL", AssetType.STOCK, Feature.VOLUME), RobustSeries)
