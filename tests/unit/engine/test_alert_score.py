"""Alert scoring on hand-built series: numbers worked out by hand from the formulas in
docs/DETECTION.md, faults, and the no-poison property checked against a run without the fault."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwatch.engine.alert_score import (
    MOVE,
    RANGE,
    VOLUME,
    AlertConfig,
    Bar,
    SymbolScorer,
    Verdict,
    _quantile,
)
from tickwatch.markets import SessionCalendar, calendar_for
from tickwatch.model import AssetType

T0 = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)
W = timedelta(minutes=5)
CONFIG = AlertConfig()


def bar(i: int, close: float, volume: float | None = 1000.0, **kw: object) -> Bar:
    values: dict[str, object] = dict(
        symbol="X",
        asset_type=AssetType.CRYPTO,
        window_start=T0 + i * W,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=volume,
        tick_count=4,
        volatility=None,
    )
    values.update(kw)
    return Bar(**values)  # type: ignore[arg-type]


def judge_all(scorer: SymbolScorer, bars: list[Bar]) -> list[Verdict]:
    out: list[Verdict] = []
    for b in bars:
        out.extend(scorer.judge(b))
    return out + scorer.flush()


def zigzag(n: int, step_pct: float = 0.1, start: float = 100.0) -> list[float]:
    """Closes whose close-to-close log move is +step, -step, +step, ...: |m| is constant."""
    closes = [start]
    for i in range(1, n):
        sign = 1 if i % 2 else -1
        closes.append(closes[-1] * math.exp(sign * step_pct / 100))
    return closes


def test_move_z_is_the_move_over_the_mean_absolute_move_times_1_2533() -> None:
    # without the hour-of-day profile (its slot factors would scale the move), by hand
    scorer = SymbolScorer(AlertConfig(hourly_profile=False), None)
    closes = zigzag(41)
    verdicts = judge_all(scorer, [bar(i, c) for i, c in enumerate(closes)])
    assert not any(v.alerting for v in verdicts)
    # every |m| was 0.1 %, so the scale is 1.2533 * 0.1; a +1 % move with volume x1.05 scores
    # 1 / 0.12533 = 7.979
    jump = closes[-1] * math.exp(0.01)
    (verdict,) = scorer.judge(bar(41, jump, volume=1050.0))
    assert verdict.move_pct == pytest.approx(1.0)
    assert verdict.z[MOVE] == pytest.approx(1.0 / (1.2533 * 0.1), rel=1e-9)
    assert verdict.alerting and MOVE in verdict.fired
    # volume was constant: its scale is the floor (0.02 in ln units), z = ln(1051/1001)/0.02
    # = 2.4375 > 1, so the volume confirms the move
    assert verdict.z[VOLUME] == pytest.approx(math.log(1051 / 1001) / 0.02)
    assert verdict.volume_ratio == pytest.approx(1051 / 1001)


def test_z_is_bounded_on_a_constant_series() -> None:
    scorer = SymbolScorer(CONFIG, None)
    verdicts = judge_all(scorer, [bar(i, 100.0) for i in range(30)] + [bar(30, 100.5)])
    last = verdicts[-1]
    assert abs(last.z[MOVE]) == CONFIG.z_cap  # 0.5 % over a 0.001 % floor, capped at 50


def test_warm_up_windows_never_alert() -> None:
    scorer = SymbolScorer(CONFIG, None)
    closes = zigzag(10)
    closes.append(closes[-1] * 1.05)
    verdicts = judge_all(
        scorer, [bar(i, c, volume=1000.0 * (5 if i == 10 else 1)) for i, c in enumerate(closes)]
    )
    assert not any(v.alerting for v in verdicts)


def test_unconfirmed_jump_that_reverts_is_a_bad_print_and_leaves_no_trace() -> None:
    """A +11 % print on thin volume that comes back next window: a data fault, one window
    late; every later verdict equals that of the same series without the bad window."""
    closes = zigzag(60)
    bars = [bar(i, c) for i, c in enumerate(closes)]
    bad = bar(60, closes[-1] * 1.11, volume=900.0)
    after = [bar(61 + k, c) for k, c in enumerate(zigzag(25, start=closes[-1] * math.exp(0.001)))]
    with_fault = judge_all(SymbolScorer(CONFIG, None), [*bars, bad, *after])
    without = judge_all(SymbolScorer(CONFIG, None), [*bars, *after])
    faults = [v for v in with_fault if v.fault]
    assert [(v.bar.window_start, v.fault) for v in faults] == [(bad.window_start, "bad_print")]
    assert not any(v.alerting for v in with_fault)
    tail_with = [(v.bar.window_start, v.z, v.move_pct) for v in with_fault if v.bar in after]
    tail_without = [(v.bar.window_start, v.z, v.move_pct) for v in without if v.bar in after]
    assert len(tail_with) == 25 and tail_with == tail_without


def test_unconfirmed_jump_that_stays_is_a_market_alert() -> None:
    closes = zigzag(60)
    jump = closes[-1] * 1.03
    bars = [bar(i, c) for i, c in enumerate(closes)] + [bar(60, jump, volume=900.0)]
    bars.append(bar(61, jump * 1.001))
    verdicts = judge_all(SymbolScorer(CONFIG, None), bars)
    (alert,) = [v for v in verdicts if v.alerting]
    assert alert.bar.window_start == T0 + 60 * W and alert.fault is None
    assert [v.bar.window_start for v in verdicts] == [b.window_start for b in bars]


def test_a_stock_halving_is_split_like_and_a_coin_halving_is_a_market_move() -> None:
    """A 2:1 split halves a stock's price in one window; coins do not split, so the same
    halving of a coin is a market alert."""
    session_open = 14 * 12 + 6  # 2024-03-04 14:30 UTC = 09:30 New York (EST)
    closes = zigzag(40)

    def series(asset_type: AssetType) -> list[Bar]:
        prices = [*closes, closes[-1] / 2]
        return [bar(session_open + i, c, asset_type=asset_type) for i, c in enumerate(prices)]

    stock = judge_all(SymbolScorer(CONFIG, calendar_for(AssetType.STOCK)), series(AssetType.STOCK))
    assert stock[-1].fault == "split_like" and not stock[-1].alerting
    coin = judge_all(SymbolScorer(CONFIG, None), series(AssetType.CRYPTO))
    assert coin[-1].fault is None and coin[-1].alerting and coin[-1].fired == (MOVE,)


def _stock_day(day: datetime, open_multiple: float) -> list[Bar]:
    """One regular session of 5-minute bars (09:30-16:00 New York): the opening window
    trades `open_multiple` x, the closing window 6x, the rest 1x with a small wiggle."""
    calendar = calendar_for(AssetType.STOCK)
    assert isinstance(calendar, SessionCalendar)
    session = calendar.session_of(day.date())
    assert session is not None
    opened, closes = session
    out = []
    price = 100.0
    for k in range((closes - opened) // 300):
        start = datetime.fromtimestamp(opened + 300 * k, UTC)
        volume = 10_000.0 * (1 + 0.2 * ((k * 7) % 5 - 2) / 2)
        if k == 0:
            volume *= open_multiple
        if k == (closes - opened) // 300 - 1:
            volume *= 6
        price *= math.exp((0.05 if k % 2 else -0.05) / 100)
        spread = price * 0.0005 * (1 + (k % 3))
        out.append(
            Bar("S", AssetType.STOCK, start, price, price + spread, price - spread, price,
                volume, 20, spread / 2)
        )  # fmt: skip
    return out


def test_ordinary_auctions_do_not_alert_but_an_unusual_open_does() -> None:
    """Ten sessions with the usual U shape (open 5x, close 6x): no alert at any open or close
    (the time-of-day profile, from the exchange calendar); then an open at 40x alerts."""
    days = [datetime(2024, 3, d, tzinfo=UTC) for d in (4, 5, 6, 7, 8, 11, 12, 13, 14, 15)]
    bars = [b for day in days for b in _stock_day(day, 5.0)]
    scorer = SymbolScorer(CONFIG, calendar_for(AssetType.STOCK))
    verdicts = judge_all(scorer, bars)
    assert not any(v.alerting for v in verdicts)
    witching = _stock_day(datetime(2024, 3, 18, tzinfo=UTC), 40.0)
    opening = judge_all(scorer, witching[:1])
    assert opening[0].alerting and VOLUME in opening[0].fired


def test_march_2024_daylight_saving_keeps_the_opening_slot() -> None:
    """New York moved to EDT on 2024-03-10: the open is 14:30 UTC before and 13:30 after;
    both are slot 0 of their session (the calendar, not a fixed UTC hour)."""
    calendar = calendar_for(AssetType.STOCK)
    assert calendar is not None
    before = calendar.position(datetime(2024, 3, 8, 14, 30, tzinfo=UTC))
    after = calendar.position(datetime(2024, 3, 11, 13, 30, tzinfo=UTC))
    assert (before.slot, before.regular) == (0, True) == (after.slot, after.regular)
    # Good Friday 2024-03-29 is an NYSE holiday; 2024-11-29 closes at 13:00
    assert calendar.position(datetime(2024, 3, 29, 15, 0, tzinfo=UTC)).regular is False
    half_day_close = calendar.position(datetime(2024, 11, 29, 17, 55, tzinfo=UTC))
    assert half_day_close.slot == calendar.position(datetime(2024, 11, 27, 20, 55, tzinfo=UTC)).slot


def test_zero_volume_in_the_session_is_a_fault_not_a_market_alert() -> None:
    bars = _stock_day(datetime(2024, 3, 4, tzinfo=UTC), 5.0)
    middle = bars[40]
    zero = Bar(middle.symbol, middle.asset_type, middle.window_start, middle.open, middle.high,
               middle.low, middle.close, 0.0, 3, middle.volatility)  # fmt: skip
    bars[40] = zero
    verdicts = judge_all(SymbolScorer(CONFIG, calendar_for(AssetType.STOCK)), bars)
    assert [v.fault for v in verdicts if v.fault] == ["zero_volume"]


def test_volatility_burst_alerts_on_its_own() -> None:
    closes = zigzag(60)
    bars = [
        bar(i, c, volatility=c * 0.0004, high=c * 1.001, low=c * 0.999)
        for i, c in enumerate(closes)
    ]
    c = closes[-1] * math.exp(0.001)
    bars.append(bar(60, c, volatility=c * 0.004, high=c * 1.01, low=c * 0.99))
    verdicts = judge_all(SymbolScorer(CONFIG, None), bars)
    assert verdicts[-1].fired == (RANGE,)


def _day_series(days: int, spikes: dict[int, float]) -> list[Bar]:
    """`days` of 5-minute crypto windows with constant 0.1 % zigzag moves and volume 1000,
    times `spikes[i]` volume at window i (288 windows a day)."""
    closes = zigzag(days * 288)
    return [bar(i, c, volume=1000.0 * spikes.get(i, 1.0)) for i, c in enumerate(closes)]


def test_a_spike_at_the_same_time_every_day_is_a_schedule_not_news() -> None:
    """A volume spike at 08:00 UTC on days 1, 2, 3 (a funding time, a nightly job): the 3rd
    is muted (2 of the last 3 days had one as large within 15 minutes); the same spike at
    14:00 on day 3 alerts."""
    at_8 = {d * 288 + 96: 8.0 for d in (1, 2, 3)}
    verdicts = judge_all(SymbolScorer(CONFIG, None), _day_series(4, {**at_8, 3 * 288 + 168: 8.0}))
    fired = {v.bar.window_start: v.fired for v in verdicts if v.fired}
    day3_8 = T0 + (3 * 288 + 96) * W
    day3_14 = T0 + (3 * 288 + 168) * W
    assert VOLUME in fired.get(T0 + (1 * 288 + 96) * W, ())
    assert day3_8 not in fired
    assert VOLUME in fired[day3_14]


def test_a_price_step_at_the_same_time_every_day_is_a_schedule_too() -> None:
    """The price steps up 3% at 09:00 UTC and back at 18:00 every day, on usual volume (so
    each step is held one window as a possible bad print, then found real). From day 3 on, 2
    of the last 3 days had the same step within 15 minutes: no alert; day 1's steps alert."""
    closes = []
    for i, base in enumerate(zigzag(5 * 288)):
        minute = i % 288
        level = 1.03 if 108 <= minute < 216 else 1.0  # 09:00 to 18:00
        closes.append(base * level)
    verdicts = judge_all(SymbolScorer(CONFIG, None), [bar(i, c) for i, c in enumerate(closes)])
    fired = {v.bar.window_start for v in verdicts if MOVE in v.fired}
    assert T0 + (288 + 108) * W in fired and T0 + (288 + 216) * W in fired
    assert not {T0 + (d * 288 + m) * W for d in (3, 4) for m in (108, 216)} & fired


def test_a_sustained_drift_alerts_though_no_single_window_does() -> None:
    """Moves of +0.49 % a window against a usual 0.1 % (z = 0.49 / 0.12533 = 3.91 < 4 at
    first, less as the scale learns them): the CUSUM of z - 2 grows by at most 1.91 a window,
    so it passes 12 after at least 7 windows (and does, within 40)."""
    closes = zigzag(120)
    drift = [closes[-1] * math.exp(0.0049 * (k + 1)) for k in range(40)]
    scorer = SymbolScorer(AlertConfig(hourly_profile=False, tail_min=10_000), None)
    verdicts = judge_all(scorer, [bar(i, c) for i, c in enumerate([*closes, *drift])])
    firing = [i for i, v in enumerate(verdicts) if v.fired]
    assert firing and all(v.z[MOVE] < CONFIG.z_open for v in verdicts[120:])
    assert verdicts[firing[0]].fired == (MOVE,)
    assert 120 + 6 <= firing[0] < 120 + 40


@given(
    st.lists(
        st.one_of(st.floats(0, 1e6), st.sampled_from([0.0, 1.0, 2.5])), min_size=1, max_size=400
    ),
    st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.995, 1.0]),
)
def test_tail_quantile_is_numpys_linear_quantile_bit_for_bit(values: list[float], q: float) -> None:
    # numpy is the independent oracle: the selection must give its exact float, ties included
    assert _quantile(values, q) == float(np.quantile(values, q))


def test_tail_quantile_of_hand_values_and_nan() -> None:
    # n = 5, q = 0.9: h = 3.6, between the 4th (4.0) and 5th (10.0) smallest: 10 - 6 * 0.4
    assert _quantile([10.0, 1.0, 4.0, 2.0, 3.0], 0.9) == pytest.approx(7.6, abs=1e-12)
    assert math.isnan(_quantile([1.0, math.nan, 2.0], 0.5))  # as numpy: NaN anywhere is NaN


@pytest.mark.parametrize("extreme", [1e-320, 9.99e11])
def test_prices_at_the_edges_of_validation_are_scored_not_crashed(extreme: float) -> None:
    """Validation lets any price in (0, 1e12) through: 1e-320 / 1e11 underflows to 0 and a
    quotient of 1e31 lies beyond every split ratio; both are judged (a move of
    ln(1e-320) - ln(1e11) = -762.1 ln units, i.e. -76,210 %), never raise."""
    closes = [*zigzag(30, start=1e11 if extreme < 1 else 1e-20), extreme, extreme]
    for asset_type, calendar in ((AssetType.CRYPTO, None), (AssetType.STOCK, "stock")):
        scorer = SymbolScorer(CONFIG, calendar_for(AssetType.STOCK) if calendar else None)
        start = 14 * 12 + 6  # 09:30 New York on 2024-03-04, so stock bars are in the session
        bars = [bar(start + i, c, asset_type=asset_type) for i, c in enumerate(closes)]
        verdicts = judge_all(scorer, bars)
        move = next(v.move_pct for v in verdicts if v.bar.close == extreme)
        expected = 100 * (math.log(extreme) - math.log(closes[29]))
        assert move == pytest.approx(expected, rel=1e-12)


def test_a_volatility_burst_must_matter_next_to_the_usual_move() -> None:
    # one price per window (spread 0) moving 1 % a window: the move scale is 1.2533 x 1 %, so
    # a burst needs a spread of at least 0.5 x 1.2533 = 0.627 % of the close
    closes = zigzag(60, step_pct=1.0)
    base = [bar(i, c) for i, c in enumerate(closes)]
    c = closes[-1] * math.exp(0.01)
    small = bar(60, c, volatility=c * 0.001)  # two prices 0.1 % apart: z at the cap, no burst
    large = bar(60, c, volatility=c * 0.02)  # 2 % of the close: a burst
    small_verdict = judge_all(SymbolScorer(CONFIG, None), [*base, small])[-1]
    assert small_verdict.z[RANGE] == CONFIG.z_cap
    assert RANGE not in small_verdict.fired
    large_verdict = judge_all(SymbolScorer(CONFIG, None), [*base, large])[-1]
    assert RANGE in large_verdict.fired


@pytest.mark.parametrize(("move_pct", "alerts"), [(0.8, False), (5.0, True)])
def test_a_move_across_a_gap_in_the_data_is_scaled_by_the_root_of_its_span(
    move_pct: float, alerts: bool
) -> None:
    # windows every 5 minutes moving 0.1 % (scale 0.12533 %), then 25 windows without data:
    # the move is compared with 0.12533 x sqrt(25) = 0.627 %, as a random walk spreads (no
    # hour-of-day profile: its slot factors would scale the move too)
    closes = zigzag(60)
    c = closes[-1] * math.exp(move_pct / 100)
    bars = [bar(i, x) for i, x in enumerate(closes)] + [bar(84, c), bar(85, c)]
    verdicts = judge_all(SymbolScorer(AlertConfig(hourly_profile=False), None), bars)
    after_gap = next(v for v in verdicts if v.bar.window_start == T0 + 84 * W)
    assert after_gap.move_minutes == 125
    assert after_gap.z[MOVE] == pytest.approx(move_pct / (1.2533 * 0.1) / 5, rel=1e-9)
    assert (MOVE in after_gap.fired) is alerts
