"""Invariants of the engine, checked on generated tick streams (hypothesis)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tickwatch.engine import EngineConfig
from tickwatch.engine.columnar import ColumnarEngine
from tickwatch.model import AssetType, Tick

START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
LATENESS = timedelta(minutes=10)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@st.composite
def streams(draw: st.DrawFn) -> list[Tick]:
    """Ticks in event-time order for up to three symbols over a few hours."""
    n = draw(st.integers(1, 300))
    gaps = draw(st.lists(st.integers(0, 240), min_size=n, max_size=n))  # seconds
    prices = draw(st.lists(st.floats(1.0, 1000.0), min_size=n, max_size=n))
    volumes = draw(st.lists(st.none() | st.floats(0.0, 1e6), min_size=n, max_size=n))
    symbols = draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=n, max_size=n))
    ticks, moment = [], START
    for gap, price, volume, symbol in zip(gaps, prices, volumes, symbols, strict=True):
        moment += timedelta(seconds=gap, milliseconds=1)  # distinct times: no duplicates
        ticks.append(Tick("gen", AssetType.STOCK, symbol, moment, moment, price, volume))
    return ticks


def run(ticks: list[Tick]):
    engine = ColumnarEngine(EngineConfig(min_history=3), clock=lambda: NOW)
    out = engine.process(ticks)
    out.extend(engine.flush())
    return out


def rows(out) -> list[dict[str, object]]:
    return sorted((w.as_row() for w in out.windows), key=lambda r: (r["symbol"], r["window_start"]))


def anomalies(out) -> list[dict[str, object]]:
    return sorted(
        (a.as_row() for a in out.anomalies),
        key=lambda r: (r["symbol"], r["window_start"], r["anomaly_type"]),
    )


@settings(max_examples=150, deadline=None)
@given(streams())
def test_low_is_below_open_and_close_which_are_below_high(ticks):
    for w in run(ticks).windows:
        assert w.low <= min(w.open, w.close) <= max(w.open, w.close) <= w.high
        assert w.window_end - w.window_start == timedelta(minutes=5)
        assert w.window_start.timestamp() % 300 == 0


@settings(max_examples=150, deadline=None)
@given(streams(), st.randoms(use_true_random=False))
def test_arrival_order_within_the_allowed_lateness_changes_nothing(ticks, rnd: random.Random):
    # each tick is delayed by less than the allowed lateness, then they arrive in delivery order
    delay = {id(t): timedelta(seconds=rnd.uniform(0, LATENESS.total_seconds() - 1)) for t in ticks}
    shuffled = sorted(ticks, key=lambda t: t.event_time + delay[id(t)])
    ordered, reordered = run(ticks), run(shuffled)
    assert reordered.late == []
    assert rows(reordered) == rows(ordered)
    assert anomalies(reordered) == anomalies(ordered)


@settings(max_examples=150, deadline=None)
@given(streams(), st.randoms(use_true_random=False))
def test_a_duplicated_tick_counts_once(ticks, rnd: random.Random):
    copies = [t for t in ticks if rnd.random() < 0.3]
    with_copies = sorted(ticks + copies, key=lambda t: t.event_time)  # stable: copy after original
    once, twice = run(ticks), run(with_copies)
    assert twice.duplicates == len(copies)
    assert twice.accepted == once.accepted == len(ticks)
    assert rows(twice) == rows(once)


@settings(max_examples=150, deadline=None)
@given(streams(), st.integers(0, 299), st.floats(1.0, 1000.0))
def test_a_late_tick_is_dead_lettered_never_added_to_a_closed_window(ticks, which, price):
    engine = ColumnarEngine(EngineConfig(min_history=3), clock=lambda: NOW)
    first = engine.process(ticks)
    symbol = ticks[which % len(ticks)].symbol
    watermark = engine.watermark(symbol)
    assert watermark is not None
    stale = watermark - timedelta(minutes=5, seconds=1)  # its window ended before the watermark
    late = engine.process([Tick("late", AssetType.STOCK, symbol, stale, stale, price, 1.0)])
    assert late.accepted == 0 and len(late.late) == 1
    rest = engine.flush()
    assert rows(type(first)(windows=first.windows + rest.windows)) == rows(run(ticks))
