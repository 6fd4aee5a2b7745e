"""The engine against the oracle (tests/oracle, one Tick at a time): the same windows,
anomalies, late ticks and counts; sums equal up to rounding (tests/oracle/compare.py).

Hand cases pin the rules the fast path could get wrong (late vs duplicate near the memory's
edge, bars, null volumes, several sources at one instant); hypothesis streams mix them all,
shuffled within the allowed lateness and split into micro-batches at random points, for every
detector.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import at_time
from tests.oracle.compare import assert_same_output
from tests.oracle.engine import Engine
from tickwatch.engine import DETECTORS, EngineConfig, EngineOutput
from tickwatch.engine.batch import TickBatch
from tickwatch.engine.columnar import ColumnarEngine
from tickwatch.model import AssetType, Tick

NOW = datetime(2030, 1, 1, tzinfo=UTC)
START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def reference(ticks: list[Tick], cuts: list[int], config: EngineConfig) -> EngineOutput:
    engine = Engine(config, clock=lambda: NOW)
    out = EngineOutput()
    for part in _split(ticks, cuts):
        out.extend(engine.process(part))
    out.extend(engine.flush())
    return out


def columnar(ticks: list[Tick], cuts: list[int], config: EngineConfig) -> EngineOutput:
    engine = ColumnarEngine(config, clock=lambda: NOW)
    out = EngineOutput()
    for part in _split(ticks, cuts):
        out.extend(engine.process_batch(TickBatch.from_ticks(part)).to_engine_output())
    out.extend(engine.flush())
    return out


def _split(ticks: list[Tick], cuts: list[int]) -> list[list[Tick]]:
    edges = [0, *sorted(c % (len(ticks) + 1) for c in cuts), len(ticks)]
    return [ticks[a:b] for a, b in pairwise(edges)]


def assert_same(ticks: list[Tick], cuts: list[int] = (), **overrides: object) -> EngineOutput:
    config = EngineConfig(**overrides)  # type: ignore[arg-type]
    want, got = reference(ticks, list(cuts), config), columnar(ticks, list(cuts), config)
    assert_same_output(got, want, config)
    return want


def tick(
    at: datetime,
    price: float,
    volume: float | None = 1.0,
    symbol: str = "AAPL",
    source: str = "test",
    **bar: float,
) -> Tick:
    return Tick(source, AssetType.STOCK, symbol, at, at, price, volume, **bar)


def test_late_and_duplicate_ticks_match_the_reference():
    ticks = [
        tick(at_time("10:01"), 100.0),
        tick(at_time("10:01"), 101.0),  # duplicate (same source, symbol, time): first wins
        tick(at_time("10:01"), 102.0, source="other"),  # another source: counts
        tick(at_time("10:22"), 103.0),  # watermark 10:12 closes 10:00-10:05
        tick(at_time("10:03"), 104.0),  # late, with the reference's reason
        tick(at_time("10:01"), 105.0),  # closed but remembered: a duplicate, not late
        tick(at_time("10:11"), 106.0),  # window 10:10-10:15 still open
    ]
    out = assert_same(ticks)
    assert (out.accepted, out.duplicates, len(out.late)) == (4, 2, 1)


def test_duplicate_memory_ends_lookback_windows_behind_the_watermark():
    ticks = [tick(at_time("10:01"), 100.0)]
    ticks += [tick(at_time("10:00") + timedelta(minutes=5 * k), 100.0 + k) for k in range(1, 30)]
    ticks += [tick(at_time("10:01"), 99.0)]  # forgotten by then: late
    ticks += [tick(at_time("12:00"), 99.0)]  # closed, still remembered: duplicate
    out = assert_same(ticks, lookback=20, min_history=3)
    assert (out.duplicates, len(out.late)) == (1, 1)


def test_bars_null_volumes_and_equal_values_match():
    ticks = []
    for k in range(12):
        base = at_time("10:00") + timedelta(minutes=5 * k)
        ticks.append(tick(base, 10.0, 0.1, open=9.0, high=11.0, low=8.5, close=10.0))
        ticks.append(tick(base + timedelta(minutes=1), 10.0, None))
    # volumes are 0.1 every window: zero deviation, no score (a naive sum would score it)
    ticks.append(tick(at_time("11:10"), 30.0, 0.1))
    ticks.append(tick(at_time("11:30"), 30.0, 5.0, symbol="MSFT"))
    out = assert_same(ticks, min_history=3)
    assert out.windows and all(w.scores for w in out.windows)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[Tick], list[int], int]:
    n = draw(st.integers(1, 250))
    ticks, moment = [], START
    for _ in range(n):
        moment += timedelta(seconds=draw(st.integers(0, 200)), milliseconds=draw(st.integers(0, 2)))
        symbol = draw(st.sampled_from(["A", "B", "C"]))
        source = draw(st.sampled_from(["s1", "s1", "s2"]))
        volume = draw(st.none() | st.sampled_from([0.0, 0.1, 3.0]) | st.floats(0.0, 1e6))
        price = draw(st.sampled_from([1.0, 0.1, 100.0]) | st.floats(0.5, 1000.0))
        if draw(st.integers(0, 9)) == 0:
            low, high = sorted(draw(st.lists(st.floats(0.5, 1000.0), min_size=2, max_size=2)))
            bar = {"open": low, "high": high, "low": low, "close": high}
            ticks.append(tick(moment, high, volume, symbol, source, **bar))
        else:
            ticks.append(tick(moment, price, volume, symbol, source))
    rng = random.Random(draw(st.integers(0, 2**32)))
    repeats = [rng.choice(ticks) for _ in range(draw(st.integers(0, n // 4)))]
    ticks += repeats  # duplicates (and lates) arrive after the watermark moved on
    # shuffle within the lateness: sort by event time plus a random delay of up to 15 minutes
    delays = {id(t): timedelta(seconds=rng.uniform(0, 900)) for t in ticks}
    if draw(st.booleans()):
        ticks.sort(key=lambda t: t.event_time + delays[id(t)])
    cuts = draw(st.lists(st.integers(0, 10**6), max_size=4))
    return ticks, cuts, draw(st.integers(2, 5))


@settings(max_examples=100, deadline=None)
@given(streams(), st.sampled_from(DETECTORS))
def test_generated_streams_give_the_same_rows(case, detector):
    ticks, cuts, min_history = case
    lookback = min_history + 3
    assert_same(ticks, cuts, min_history=min_history, lookback=lookback, detector=detector)


def test_repeats_right_after_their_tick_never_take_the_tick_by_tick_path(monkeypatch):
    def refuse(*args: object) -> None:
        raise AssertionError("went tick by tick")

    monkeypatch.setattr(ColumnarEngine, "_replay_slow", refuse)
    ticks = [
        tick(at_time("10:01"), 100.0),
        tick(at_time("10:01"), 100.0),  # the same poll again: duplicate
        tick(at_time("10:01"), 101.0, source="other"),  # another source, same instant: counts
        tick(at_time("10:01"), 101.0, source="other"),  # duplicate
        tick(at_time("10:01"), 100.0),  # duplicate, after the other source's
        tick(at_time("10:02"), 102.0),
        tick(at_time("10:02"), 102.0),  # duplicate
        tick(at_time("10:02"), 103.0, symbol="MSFT"),
        tick(at_time("10:02"), 103.0, symbol="MSFT"),  # duplicate
    ]
    out = columnar(ticks, [], EngineConfig())
    assert (out.accepted, out.duplicates, out.late) == (4, 5, [])
    monkeypatch.undo()
    assert_same(ticks)


@st.composite
def polled(draw: st.DrawFn) -> tuple[list[Tick], list[int]]:
    """In-order streams where a poll sends some ticks again right after themselves."""
    ticks, moment = [], START
    for _ in range(draw(st.integers(1, 200))):
        moment += timedelta(seconds=draw(st.integers(0, 120)))
        symbol, source = draw(st.sampled_from(["A", "B"])), draw(st.sampled_from(["s1", "s2"]))
        t = tick(moment, draw(st.floats(0.5, 1000.0)), draw(st.floats(0.0, 1e3)), symbol, source)
        ticks += [t] * draw(st.sampled_from([1, 1, 1, 2, 3]))
    return ticks, draw(st.lists(st.integers(0, 400), max_size=4))


@settings(max_examples=100, deadline=None)
@given(polled())
def test_polled_streams_with_repeats_give_the_same_rows(case):
    ticks, cuts = case
    assert_same(ticks, cuts, min_history=3, lookback=6)


@pytest.mark.parametrize("detector", DETECTORS)
def test_restore_then_process_matches_and_open_ticks_agree(detector):
    config = EngineConfig(min_history=3, detector=detector)
    history = reference(
        [
            tick(
                at_time("09:00") + timedelta(minutes=5 * k, seconds=s),
                100.0 + k % 3 + s / 100,
                1.0 + s,
            )
            for k in range(10)
            for s in (10, 200)
        ],
        [],
        config,
    ).windows
    later = [
        tick(at_time("09:49"), 99.0),
        tick(at_time("10:01"), 120.0, 50.0),
        tick(at_time("10:02"), 80.0),
        tick(at_time("10:30"), 100.0),
    ]
    ref, col = Engine(config, clock=lambda: NOW), ColumnarEngine(config, clock=lambda: NOW)
    ref.restore(history)
    col.restore(history)
    want, got = ref.process(later), col.process(later)
    assert len(got.late) == 1  # 09:49 is behind the restored watermark
    opened = sorted(col.open_ticks(), key=lambda t: t.event_time)
    assert opened == sorted(ref.assembler.open_ticks(), key=lambda t: t.event_time)
    assert [t.price for t in opened] == [100.0]  # 10:30's window is still open
    got.extend(col.flush())
    want.extend(ref.flush())
    assert_same_output(got, want, config)


@settings(max_examples=60, deadline=None)
@given(streams(), st.integers(0, 10**6), st.sampled_from(["zscore", "robust"]))
def test_a_snapshot_resumes_exactly_where_the_engine_stopped(case, cut, detector):
    """`snapshot` / `from_snapshot` between two batches (what the Spark job does on every
    micro-batch) changes nothing: the same code on the same state, so equal to the bit."""
    ticks, _, min_history = case
    config = EngineConfig(min_history=min_history, lookback=min_history + 3, detector=detector)
    cut %= len(ticks) + 1
    whole = columnar(ticks, [cut], config)
    first = ColumnarEngine(config, clock=lambda: NOW)
    out = first.process_batch(TickBatch.from_ticks(ticks[:cut])).to_engine_output()
    resumed = ColumnarEngine.from_snapshot(config, lambda: NOW, first.snapshot())
    out.extend(resumed.process_batch(TickBatch.from_ticks(ticks[cut:])).to_engine_output())
    out.extend(resumed.flush())
    assert out == whole
