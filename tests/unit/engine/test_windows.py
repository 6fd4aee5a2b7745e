"""The oracle's watermarks, late ticks and duplicates (DESIGN.md "Time"), by hand."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import at_time
from tests.oracle.windows import WindowAssembler

FIVE = timedelta(minutes=5)
TEN = timedelta(minutes=10)


def assembler() -> WindowAssembler:
    return WindowAssembler(FIVE, TEN, retention_windows=20)


def test_window_closes_when_watermark_passes_its_end(make_tick):
    a = assembler()
    assert a.add(make_tick("10:01", 1.0)).closed == []
    # watermark 10:14:59 < 10:05 + 10 min: still open
    assert a.add(make_tick("10:14:59", 1.0)).closed == []
    closed = a.add(make_tick("10:15", 1.0)).closed  # watermark 10:05 = end of [10:00, 10:05)
    assert [(c.start, c.end) for c in closed] == [(at_time("10:00"), at_time("10:05"))]
    assert a.watermark("AAPL") == at_time("10:05")


def test_windows_close_oldest_first(make_tick):
    a = assembler()
    for t in ("10:01", "10:06", "10:11"):
        a.add(make_tick(t, 1.0))
    closed = a.add(make_tick("10:30", 1.0)).closed  # watermark 10:20
    assert [c.start for c in closed] == [at_time("10:00"), at_time("10:05"), at_time("10:10")]


def test_tick_for_a_closed_window_is_late(make_tick):
    a = assembler()
    a.add(make_tick("10:01", 1.0))
    a.add(make_tick("10:31", 1.0))  # watermark 10:21
    late = a.add(make_tick("10:19", 1.0))
    assert late.late_reason is not None and "10:15" in late.late_reason
    on_time = a.add(make_tick("10:21", 1.0))  # window [10:20, 10:25) ends after 10:21
    assert on_time.late_reason is None


def test_watermark_is_per_symbol(make_tick):
    a = assembler()
    a.add(make_tick("10:01", 1.0, symbol="A"))
    a.add(make_tick("11:00", 1.0, symbol="B"))
    assert a.add(make_tick("10:02", 1.0, symbol="A")).late_reason is None


def test_duplicates_count_once_even_after_their_window_closed(make_tick):
    a = assembler()
    a.add(make_tick("10:01", 1.0))
    assert a.add(make_tick("10:01", 2.0)).duplicate
    assert not a.add(make_tick("10:01", 1.0, source="other")).duplicate
    a.add(make_tick("10:30", 1.0))  # closes [10:00, 10:05)
    repeated = a.add(make_tick("10:01", 1.0))
    assert repeated.duplicate and repeated.late_reason is None


def test_first_duplicate_wins_and_order_is_by_event_time_then_source(make_tick):
    a = assembler()
    a.add(make_tick("10:03", 3.0, source="b"))
    a.add(make_tick("10:03", 9.0, source="a"))
    a.add(make_tick("10:01", 1.0))
    a.add(make_tick("10:01", 7.0))  # duplicate: ignored
    (window,) = a.close_all()
    assert [t.price for t in window.ticks] == [1.0, 9.0, 3.0]
