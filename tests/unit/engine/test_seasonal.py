"""Seasonal detector: time-of-day profiles, its fallback, and the market-open false alarm."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest

from tickwatch.engine import Engine, EngineConfig
from tickwatch.engine.detectors import ZScoreSeries, make_detector
from tickwatch.engine.seasonal import SeasonalDetector, SeasonalSeries
from tickwatch.model import AnomalyType, AssetType, Feature, Tick
from tickwatch.sources.simulate import NEW_YORK, MarketSimulator


def ny(day: int, hour: int, minute: int) -> datetime:
    """A time in New York in March 2024, as UTC (EST before the 10th, EDT after)."""
    return datetime(2024, 3, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def test_profile_adjusted_score_by_hand() -> None:
    s = SeasonalSeries(lookback=4, min_history=2, lookback_days=20)
    for day, open_volume, next_volume in ((4, 3000.0, 1000.0), (5, 3300.0, 900.0)):
        s.learn_one(open_volume, ny(day, 9, 30))
        s.learn_one(next_volume, ny(day, 9, 35))
    # profiles: 09:30 -> 3150, 09:35 -> 950; history in slot units:
    # 3000/3150 = 1 - 1/21, 1000/950 = 1 + 1/19, 3300/3150 = 1 + 1/21, 900/950 = 1 - 1/19
    # mean 1; sample variance (2/21^2 + 2/19^2) / 3
    d = math.sqrt((2 / 21**2 + 2 / 19**2) / 3)
    score = s.score_one(3600.0, ny(6, 9, 30))
    assert score.z == pytest.approx((3600 / 3150 - 1) / d)
    assert score.mean == pytest.approx(3150.0)
    assert score.std == pytest.approx(3150 * d)


def test_slots_follow_new_york_time_across_daylight_saving() -> None:
    s = SeasonalSeries(lookback=20, min_history=2, lookback_days=20)
    assert s.slot(ny(8, 9, 30)) == s.slot(ny(11, 9, 30)) == (9, 30)
    assert ny(8, 9, 30).hour != ny(11, 9, 30).hour  # 14:30 UTC before, 13:30 UTC after


def test_rolling_zscore_until_the_slots_have_history() -> None:
    seasonal = SeasonalSeries(lookback=20, min_history=3, lookback_days=20)
    rolling = ZScoreSeries(lookback=20, min_history=3)
    values = [1000.0, 1100.0, 950.0, 1200.0]
    for minute, value in zip((35, 40, 45, 50), values, strict=True):
        at = ny(4, 9, minute)
        assert seasonal.score_one(value, at) == rolling.score_one(value, at)
        seasonal.learn_one(value, at)
        rolling.learn_one(value, at)


def test_price_return_and_crypto_use_the_rolling_zscore() -> None:
    detector = make_detector("seasonal", 20, 5)
    assert isinstance(detector, SeasonalDetector)
    assert isinstance(detector.series("AAPL", AssetType.STOCK, Feature.VOLUME), SeasonalSeries)
    assert isinstance(detector.series("AAPL", AssetType.STOCK, Feature.VOLATILITY), SeasonalSeries)
    assert isinstance(detector.series("AAPL", AssetType.STOCK, Feature.PRICE_RETURN), ZScoreSeries)
    assert isinstance(detector.series("bitcoin", AssetType.CRYPTO, Feature.VOLUME), ZScoreSeries)


def session_ticks(days: list[int]) -> list[Tick]:
    """One tick per 5-minute window, 09:30-16:00 New York: the open trades 3000, the rest 1000.

    A small deterministic wobble (+-20) keeps the deviation above 0.
    """
    ticks = []
    for day in days:
        for i in range(78):
            moment = ny(day, 9, 30) + timedelta(minutes=5 * i)
            volume = (3000.0 if i == 0 else 1000.0) + 10 * ((i * 7 + day) % 5 - 2)
            ticks.append(Tick("test", AssetType.STOCK, "AAPL", moment, moment, 100.0, volume))
    return ticks


def open_alerts(detector: str, ticks: list[Tick]) -> dict[date, float]:
    engine = Engine(EngineConfig(detector=detector), lambda: ny(20, 0, 0))
    alerts = engine.process(ticks).anomalies + engine.flush().anomalies
    assert {a.anomaly_type for a in alerts} <= {AnomalyType.VOLUME_SURGE}
    return {a.window_start.date(): a.z_score for a in alerts}


def test_market_open_false_alarm_under_zscore_not_under_seasonal() -> None:
    """Every open is 3x the afternoon before it: a surge to the z-score, routine to seasonal."""
    days = [4, 5, 6, 7, 8, 11, 12]  # Monday 4 March to Tuesday 12 March 2024 (DST on the 10th)
    ticks = session_ticks(days)
    zscore = open_alerts("zscore", ticks)
    seasonal = open_alerts("seasonal", ticks)
    # z-score: each open (from the second day) against twenty windows of about 1000
    assert set(zscore) == {date(2024, 3, d) for d in days[1:]}
    assert min(zscore.values()) > 50
    # seasonal: the slots have 5 days of history from the sixth day (11 March) on, and the
    # opens stop alarming; before that it is the z-score, alarms included
    assert set(seasonal) == {date(2024, 3, d) for d in (5, 6, 7, 8)}


def test_fewer_false_volume_alarms_on_the_simulated_u_shaped_session() -> None:
    """The simulator's stock volume is U-shaped; with no injected anomalies every alert is false."""
    sim = MarketSimulator(["AAPL", "MSFT"], [], seed=11, anomaly_rate=0.0)
    start = ny(4, 0, 0)
    ticks = [t for w in sim.windows(start, start + timedelta(days=19)) for t in w]
    counts = {}
    for name in ("zscore", "seasonal"):
        engine = Engine(EngineConfig(detector=name), lambda: start)
        alerts = engine.process(ticks).anomalies + engine.flush().anomalies
        late = [  # from the sixth trading day on, when the slot profiles exist
            a
            for a in alerts
            if a.anomaly_type is AnomalyType.VOLUME_SURGE and a.window_start >= ny(11, 9, 30)
        ]
        counts[name] = len(late)
    assert counts["seasonal"] < counts["zscore"] * 3 / 4
