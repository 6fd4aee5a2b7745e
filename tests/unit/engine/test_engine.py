"""The engine end to end (z-score detector) on series whose scores are worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import at_time
from tickwatch.engine import EngineConfig
from tickwatch.engine.columnar import ColumnarEngine
from tickwatch.model import AnomalyType, Feature, Severity, Tick

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def engine(**overrides: object) -> ColumnarEngine:
    return ColumnarEngine(EngineConfig(**overrides), clock=lambda: NOW)  # type: ignore[arg-type]


def series(make_tick, returns_pct, volumes, start="10:00") -> list[Tick]:
    """Window i opens at 100 (volume v_i) and closes at 100 * (1 + r_i / 100) (no volume)."""
    ticks = []
    for i, (r, v) in enumerate(zip(returns_pct, volumes, strict=True)):
        base = at_time(start) + timedelta(minutes=5 * i)
        ticks.append(make_tick(base + timedelta(minutes=1), 100.0, v))
        ticks.append(make_tick(base + timedelta(minutes=3), 100.0 * (1 + r / 100), None))
    return ticks


def run_all(e: ColumnarEngine, ticks):
    out = e.process(ticks)
    out.extend(e.flush())
    return out


def test_return_and_volume_jump_give_exact_z_and_severity(make_tick):
    history_returns = [0.1, -0.1] * 10  # mean 0, sample std sqrt(0.2 / 19)
    history_volumes = [10.0, 12.0] * 10  # mean 11, sample std sqrt(20 / 19)
    ticks = series(make_tick, [*history_returns, 0.5], [*history_volumes, 16.0])
    out = run_all(engine(), ticks)

    assert len(out.windows) == 21
    last = out.windows[-1]
    ret = last.scores[Feature.PRICE_RETURN]
    assert ret.mean == pytest.approx(0.0, abs=1e-9)
    assert ret.std == pytest.approx(math.sqrt(0.2 / 19))
    assert ret.z == pytest.approx(0.5 / math.sqrt(0.2 / 19))  # 4.873
    vol = last.scores[Feature.VOLUME]
    assert (vol.mean, vol.std) == (pytest.approx(11.0), pytest.approx(math.sqrt(20 / 19)))
    assert vol.z == pytest.approx(5 / math.sqrt(20 / 19))  # 4.873
    # every window's volatility is 0.1 / sqrt(2) (abs 1e-12 apart at most): deviation ~0, no z
    volatility = last.scores[Feature.VOLATILITY]
    assert volatility.z is None or abs(volatility.z) < 3

    by_type = {a.anomaly_type: a for a in out.anomalies}
    assert set(by_type) == {AnomalyType.PRICE_SPIKE, AnomalyType.VOLUME_SURGE}
    spike = by_type[AnomalyType.PRICE_SPIKE]
    assert spike.severity is Severity.MEDIUM
    assert spike.window_start == at_time("11:40")
    assert spike.window_end == at_time("11:45")
    assert spike.value == pytest.approx(0.5)
    assert spike.detected_at == NOW
    assert by_type[AnomalyType.VOLUME_SURGE].severity is Severity.MEDIUM


@pytest.mark.parametrize(
    ("jump", "severity"),
    [(0.30, None), (0.31, Severity.LOW), (0.42, Severity.MEDIUM), (0.52, Severity.HIGH)],
)
def test_severity_bands(make_tick, jump, severity):
    # history +-0.1: std = sqrt(0.2 / 19) = 0.10260, so z = jump / 0.10260:
    # 0.30 -> 2.92 (none), 0.31 -> 3.02 (low), 0.42 -> 4.09 (medium), 0.52 -> 5.07 (high)
    ticks = series(make_tick, [*([0.1, -0.1] * 10), jump], [None] * 21)
    out = run_all(engine(), ticks)
    spikes = [a for a in out.anomalies if a.anomaly_type is AnomalyType.PRICE_SPIKE]
    assert [a.severity for a in spikes] == ([severity] if severity else [])


def test_negative_z_is_an_anomaly_too(make_tick):
    ticks = series(make_tick, [*([0.1, -0.1] * 10), -0.6], [None] * 21)
    (spike,) = run_all(engine(), ticks).anomalies
    assert spike.z_score == pytest.approx(-0.6 / math.sqrt(0.2 / 19))
    assert spike.severity is Severity.HIGH


def test_no_score_before_min_history_and_only_last_lookback_windows_count(make_tick):
    returns = [0.1, -0.1, 0.1, -0.1, 0.1, 5.0]
    out = run_all(engine(min_history=5), series(make_tick, returns, [None] * 6))
    z = [w.scores[Feature.PRICE_RETURN].z for w in out.windows]
    assert z[:5] == [None] * 5
    # history 0.1 -0.1 0.1 -0.1 0.1: mean 0.02, squared deviations 0.0064 x3 + 0.0144 x2 = 0.048
    assert z[5] == pytest.approx((5.0 - 0.02) / math.sqrt(0.048 / 4))

    # lookback 3: window 4 is judged only against windows 1..3 (-0.1, 0.1, -0.1)
    out = run_all(engine(lookback=3, min_history=3), series(make_tick, returns[:5], [None] * 5))
    mean = -0.1 / 3
    std = math.sqrt(((-0.1 - mean) ** 2 * 2 + (0.1 - mean) ** 2) / 2)
    assert out.windows[4].scores[Feature.PRICE_RETURN].z == pytest.approx((0.1 - mean) / std)


def test_null_values_are_left_out_of_the_baseline(make_tick):
    # volumes: five known values around three windows without volume
    volumes = [10.0, None, 12.0, None, 10.0, 12.0, None, 10.0, 20.0]
    out = run_all(engine(), series(make_tick, [0.0] * 9, volumes))
    last = out.windows[-1].scores[Feature.VOLUME]
    # baseline values 10 12 10 12 10: mean 10.8, squared deviations 0.64 x3 + 1.44 x2 = 4.8
    assert last.mean == pytest.approx(10.8)
    assert last.std == pytest.approx(math.sqrt(4.8 / 4))
    assert last.z == pytest.approx((20 - 10.8) / math.sqrt(1.2))
    assert out.windows[1].scores[Feature.VOLUME].z is None  # its own value is null


def test_gaps_are_skipped_not_filled(make_tick):
    ticks = series(make_tick, [0.1, -0.1] * 3, [None] * 6)
    later = series(make_tick, [0.9], [None], start="15:00")  # hours later: no empty windows
    out = run_all(engine(), ticks + later)
    assert len(out.windows) == 7
    # history = the six earlier windows: mean 0, std sqrt(0.06 / 5)
    assert out.windows[-1].scores[Feature.PRICE_RETURN].z == pytest.approx(
        0.9 / math.sqrt(0.06 / 5)
    )


def test_zero_deviation_gives_no_score(make_tick):
    out = run_all(engine(), series(make_tick, [0.2] * 8, [5.0] * 7 + [50.0]))
    assert out.anomalies == []
    last = out.windows[-1].scores[Feature.VOLUME]
    assert (last.mean, last.std, last.z) == (5.0, 0.0, None)


def test_symbols_have_their_own_baselines(make_tick):
    a = series(make_tick, [*([0.1, -0.1] * 10), 0.6], [None] * 21)
    b = [
        Tick(t.source, t.asset_type, "MSFT", t.event_time, t.ingest_time, t.price * 3, t.volume)
        for t in series(make_tick, [0.5] * 21, [None] * 21)
    ]
    out = run_all(engine(), sorted(a + b, key=lambda t: t.event_time))
    assert [(x.symbol, x.anomaly_type) for x in out.anomalies] == [
        ("AAPL", AnomalyType.PRICE_SPIKE)
    ]


def test_late_tick_is_rejected_with_reason_and_counted(make_tick):
    e = engine()
    out = e.process(series(make_tick, [0.1] * 6, [1.0] * 6))  # last tick 10:28, watermark 10:18
    late = e.process([make_tick("10:12", 1.0)])
    assert late.accepted == 0
    (rejected,) = late.late
    assert rejected.kind == "late" and rejected.reason.startswith("late: window")
    assert '"symbol":"AAPL"' in rejected.payload
    assert out.accepted == 12


def test_restore_resumes_baselines_and_watermark(make_tick):
    ticks = series(make_tick, [*([0.1, -0.1] * 10), 0.6], [None] * 21)
    whole = run_all(engine(), ticks)
    first = run_all(engine(), ticks[:40])  # the 20 history windows
    resumed = engine()
    resumed.restore(first.windows)
    rest = run_all(resumed, ticks[40:])
    assert rest.anomalies[0].z_score == pytest.approx(whole.anomalies[0].z_score)
    assert resumed.process([ticks[0]]).late  # an old window stays closed after restore
