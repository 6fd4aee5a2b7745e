"""Z-score detector: DESIGN.md "Baseline and score", worked out by hand."""

from __future__ import annotations

import math

import pytest

from tests.unit.engine.detectors.feed import Feed
from tickwatch.engine.detectors.zscore import ZScoreDetector
from tickwatch.model import NO_SCORE, Score


def test_mean_sample_std_and_z_by_hand() -> None:
    s = Feed(ZScoreDetector(min_history=3))
    s.learn([1.0, 2.0, 3.0])
    assert s.score(5.0) == Score(2.0, 1.0, 3.0)


def test_nulls_are_left_out_and_min_history_counts_the_rest() -> None:
    s = Feed(ZScoreDetector(min_history=5))
    s.learn([10.0, None, 12.0, None, 10.0, 12.0])
    assert s.score(20.0) == NO_SCORE  # four values
    s = Feed(ZScoreDetector(min_history=5))
    s.learn([10.0, None, 12.0, None, 10.0, 12.0, None, 10.0])
    # 10 12 10 12 10: mean 10.8, squared deviations 0.64 x3 + 1.44 x2 = 4.8
    score = s.score(20.0)
    assert score.mean == pytest.approx(10.8)
    assert score.std == pytest.approx(math.sqrt(4.8 / 4))
    assert score.z == pytest.approx(9.2 / math.sqrt(1.2))


def test_a_null_value_has_a_baseline_but_no_z() -> None:
    s = Feed(ZScoreDetector(min_history=3))
    s.learn([1.0, 2.0, 3.0])
    assert s.score(None) == Score(2.0, 1.0, None)


def test_only_the_last_lookback_values_count() -> None:
    s = Feed(ZScoreDetector(min_history=3), lookback=3)
    s.learn([1000.0, 1.0, 2.0, 3.0])
    assert s.score(5.0) == Score(2.0, 1.0, 3.0)


def test_a_deviation_within_1e_9_of_the_mean_counts_as_zero() -> None:
    # twenty volumes of 0.1: a plain float sum gives a mean one ulp off and a std of ~1e-17,
    # which would make any other value a z of millions
    s = Feed(ZScoreDetector())
    s.learn([0.1] * 20)
    score = s.score(0.2)
    assert score.mean == pytest.approx(0.1) and (score.std, score.z) == (0.0, None)
    # 1e-9 relative is the edge: a real spread of 1e-8 of the level is still scored
    s = Feed(ZScoreDetector(min_history=2))
    s.learn([1000.0, 1000.0 + 1e-5])  # std = 1e-5 / sqrt(2) = 7.07e-9 x the mean
    assert s.score(1000.0).z == pytest.approx(-1 / math.sqrt(2), rel=1e-6)


def test_a_zero_mean_still_scores_a_real_spread() -> None:
    s = Feed(ZScoreDetector(min_history=2))
    s.learn([-1e-150, 1e-150])  # mean 0, std 1.4e-150: far above 1e-9 x 1e-300
    assert s.score(2e-150).z == pytest.approx(2 / math.sqrt(2))
