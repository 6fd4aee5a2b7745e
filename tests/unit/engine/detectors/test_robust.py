"""Robust detector: median / 1.4826 MAD, its fallbacks, and masking compared with the z-score."""

from __future__ import annotations

import statistics

import pytest

from tests.unit.engine.detectors.feed import Feed
from tickwatch.engine.detectors import make_detector
from tickwatch.engine.detectors.robust import RobustDetector
from tickwatch.engine.detectors.zscore import ZScoreDetector
from tickwatch.model import NO_SCORE


def robust(lookback: int = 20, min_history: int = 5) -> Feed:
    return Feed(RobustDetector(min_history), lookback)


def test_median_and_scaled_mad_by_hand() -> None:
    s = robust()
    s.learn([10.0, 12.0, 11.0, 13.0, 50.0])
    # median 12; |x - 12| = 2, 0, 1, 1, 38 -> median 1; s = 1.4826
    score = s.score(20.0)
    assert score.mean == 12.0
    assert score.std == pytest.approx(1.4826)
    assert score.z == pytest.approx(8 / 1.4826)


def test_an_even_count_takes_the_mean_of_the_middle_two() -> None:
    s = robust(min_history=4)
    s.learn([1.0, 2.0, 3.0, 100.0])
    # median 2.5; |x - 2.5| = 1.5, 0.5, 0.5, 97.5 -> MAD 1.0
    score = s.score(4.0)
    assert (score.mean, score.std) == (2.5, pytest.approx(1.4826))
    assert score.z == pytest.approx(1.5 / 1.4826)


def test_zero_mad_falls_back_to_mean_absolute_deviation() -> None:
    s = robust()
    s.learn([5.0, 5.0, 5.0, 6.0, 9.0])
    # median 5; |x - 5| = 0, 0, 0, 1, 4: MAD 0, mean 1 -> s = 1.253314
    score = s.score(8.0)
    assert score.std == pytest.approx(1.253314)
    assert score.z == pytest.approx(3 / 1.253314)


def test_all_equal_history_has_no_z() -> None:
    s = robust()
    s.learn([5.0] * 6)
    score = s.score(9.0)
    assert (score.mean, score.std, score.z) == (5.0, 0.0, None)


def test_too_few_values_and_nones_left_out() -> None:
    s = robust()
    s.learn([1.0, None, 2.0, None, 3.0, 4.0])
    assert s.score(100.0) == NO_SCORE
    s = robust()
    s.learn([1.0, None, 2.0, None, 3.0, 4.0, 5.0])
    assert s.score(3.0).mean == 3.0  # median of 1..5


def test_lookback_drops_the_oldest() -> None:
    s = robust(lookback=5)
    s.learn([1000.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert s.score(3.0).mean == 3.0


def test_masking_under_zscore_not_under_robust() -> None:
    """A first spike inflates the z-score's deviation and hides the second; not the MAD's."""
    calm = [0.1, -0.1] * 10
    zscore, mad = Feed(ZScoreDetector(5)), robust()
    for series in (zscore, mad):
        series.learn(calm)
        first = series.score(5.0)  # judged, then part of the history
        assert first.z is not None and first.z > 3  # both see the first spike

    history = [*calm[1:], 5.0]  # the oldest 0.1 left the 20-window lookback
    mean, std = statistics.mean(history), statistics.stdev(history)
    masked = zscore.score(2.0)
    assert masked.z == pytest.approx((2.0 - mean) / std)
    assert masked.z is not None and masked.z < 3  # the second spike is missed

    # sorted: ten -0.1, nine 0.1, 5.0 -> median 0; deviations nineteen 0.1 and 4.9 -> MAD 0.1
    seen = mad.score(2.0)
    assert seen.mean == pytest.approx(0.0)
    assert seen.z == pytest.approx(2.0 / (1.4826 * 0.1))


def test_registered_by_name() -> None:
    assert isinstance(make_detector("robust", 20, 5), RobustDetector)
