"""Seasonal detector: time-of-day profiles, its fallback, and the market-open false alarm."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.oracle.compare import assert_same_output
from tests.oracle.engine import Engine
from tests.unit.engine.detectors.feed import Feed
from tickwatch.clock import micros
from tickwatch.engine import EngineConfig, EngineOutput
from tickwatch.engine.batch import TickBatch
from tickwatch.engine.columnar import ColumnarEngine
from tickwatch.engine.detectors import make_detector
from tickwatch.engine.detectors.seasonal import NEW_YORK, SeasonalDetector, slot_of
from tickwatch.engine.detectors.zscore import ZScoreDetector
from tickwatch.model import AnomalyType, AssetType, Feature, Tick
from tickwatch.sources.simulate import MarketSimulator


def ny(day: int, hour: int, minute: int) -> datetime:
    """A time in New York in March 2024, as UTC (EST before the 10th, EDT after)."""
    return datetime(2024, 3, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def test_profile_adjusted_score_by_hand() -> None:
    s = Feed(SeasonalDetector(lookback=4, min_history=2, lookback_days=20), lookback=4)
    for day, open_volume, next_volume in ((4, 3000.0, 1000.0), (5, 3300.0, 900.0)):
        s.score(open_volume, ny(day, 9, 30))
        s.score(next_volume, ny(day, 9, 35))
    # profiles: 09:30 -> 3150, 09:35 -> 950; history in slot units:
    # 3000/3150 = 1 - 1/21, 1000/950 = 1 + 1/19, 3300/3150 = 1 + 1/21, 900/950 = 1 - 1/19
    # mean 1; sample variance (2/21^2 + 2/19^2) / 3
    d = math.sqrt((2 / 21**2 + 2 / 19**2) / 3)
    score = s.score(3600.0, ny(6, 9, 30))
    assert score.z == pytest.approx((3600 / 3150 - 1) / d)
    assert score.mean == pytest.approx(3150.0)
    assert score.std == pytest.approx(3150 * d)


def test_slots_follow_new_york_time_across_daylight_saving() -> None:
    assert slot_of(micros(ny(8, 9, 30)), NEW_YORK) == slot_of(micros(ny(11, 9, 30)), NEW_YORK)
    assert slot_of(micros(ny(11, 9, 30)), NEW_YORK) == (9, 30)
    assert ny(8, 9, 30).hour != ny(11, 9, 30).hour  # 14:30 UTC before, 13:30 UTC after


def test_rolling_zscore_until_the_slots_have_history() -> None:
    seasonal = Feed(SeasonalDetector(lookback=20, min_history=3, lookback_days=20))
    rolling = Feed(ZScoreDetector(min_history=3))
    values = [1000.0, 1100.0, 950.0, 1200.0, 990.0]
    for minute, value in zip((35, 40, 45, 50, 55), values, strict=True):
        at = ny(4, 9, minute)
        assert seasonal.score(value, at) == rolling.score(value, at)
    assert rolling.score(1000.0).z is not None  # the comparison covered scored windows


@pytest.mark.parametrize(
    ("feature", "stock"), [(Feature.PRICE_RETURN, True), (Feature.VOLUME, False)]
)
def test_price_return_and_crypto_use_the_rolling_zscore(feature: Feature, stock: bool) -> None:
    seasonal = Feed(SeasonalDetector(lookback=4, min_history=2), 4, feature, stock)
    rolling = Feed(ZScoreDetector(min_history=2), 4, feature, stock)
    for day in (4, 5, 6):  # the slots would have profiles from the third day
        for minute, value in ((30, 3.0), (35, 1.0)):
            at = ny(day, 9, minute)
            assert seasonal.score(value + day, at) == rolling.score(value + day, at)


def test_registered_by_name() -> None:
    assert isinstance(make_detector("seasonal", 20, 5), SeasonalDetector)


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
    engine = ColumnarEngine(EngineConfig(detector=detector), lambda: ny(20, 0, 0))
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
        engine = ColumnarEngine(EngineConfig(detector=name), lambda: start)
        alerts = engine.process(ticks).anomalies + engine.flush().anomalies
        late = [  # from the sixth trading day on, when the slot profiles exist
            a
            for a in alerts
            if a.anomaly_type is AnomalyType.VOLUME_SURGE and a.window_start >= ny(11, 9, 30)
        ]
        counts[name] = len(late)
    assert counts["seasonal"] < counts["zscore"] * 3 / 4


@st.composite
def sessions(draw: st.DrawFn) -> tuple[list[Tick], list[int]]:
    """Two stocks and a crypto over 4-6 trading days of 30-minute sessions, windows missing
    at random, null or zero volumes, cut into micro-batches at random points."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    days = [4, 5, 6, 7, 8, 11][: draw(st.integers(4, 6))]
    ticks = []
    for day in days:
        for i in range(6):
            for symbol, asset in (("A", AssetType.STOCK), ("B", AssetType.STOCK), ("C", None)):
                if rng.random() < 0.15:
                    continue  # no tick: no window
                moment = ny(day, 9, 30) + timedelta(minutes=5 * i, seconds=rng.randint(0, 299))
                volume = rng.choice([None, 0.0, rng.uniform(500, 1500), 3000.0 * (i == 0)])
                price = rng.uniform(90, 110)
                kind = asset or AssetType.CRYPTO
                ticks.append(Tick("t", kind, symbol, moment, moment, price, volume))
                ticks.append(Tick("u", kind, symbol, moment, moment, price * 1.01, volume))
    ticks.sort(key=lambda t: t.event_time)
    return ticks, sorted(draw(st.lists(st.integers(0, len(ticks)), max_size=4)))


def _run(engine: Engine | ColumnarEngine, ticks: list[Tick], cuts: list[int]) -> EngineOutput:
    out = EngineOutput()
    for a, b in zip([0, *cuts], [*cuts, len(ticks)], strict=True):
        if isinstance(engine, ColumnarEngine):
            out.extend(engine.process_batch(TickBatch.from_ticks(ticks[a:b])).to_engine_output())
        else:
            out.extend(engine.process(ticks[a:b]))
    out.extend(engine.flush())
    return out


@settings(max_examples=60, deadline=None)
@given(sessions())
def test_the_seasonal_detector_matches_the_oracle_over_many_days(case) -> None:
    ticks, cuts = case
    config = EngineConfig(detector="seasonal", lookback=6, min_history=2)
    now = lambda: ny(20, 0, 0)  # noqa: E731
    got = _run(ColumnarEngine(config, now), ticks, cuts)
    assert_same_output(got, _run(Engine(config, now), ticks, cuts), config)
