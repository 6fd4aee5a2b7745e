"""A stock's last windows close at the session's close plus the allowed lateness (issue 15).

Monday 2024-03-04 is a regular NYSE day; New York is UTC-5 then, so the 16:00 close is 21:00
UTC. AAPL ticks once a minute from 15:00 to 15:58 New York time (20:00-20:58 UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import at_time
from tests.oracle.engine import Engine
from tickwatch.config import load_settings
from tickwatch.engine import EngineConfig
from tickwatch.engine.columnar import ColumnarEngine
from tickwatch.model import AssetType, Tick, Window
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.store import SqlStore
from tickwatch.store.sql import dead_letters

CLOSE = at_time("21:00")  # 16:00 New York
LATENESS = timedelta(minutes=10)
CRYPTO = AssetType.CRYPTO


def session_ticks(make_tick) -> list[Tick]:
    # prices 100.0 .. 100.4 repeating, so every window has a spread and a return
    return [
        make_tick(f"20:{minute:02d}", 100 + (minute % 5) / 10, volume=10 + minute)
        for minute in range(59)
    ]


def starts(windows: list[Window]) -> list[str]:
    return [w.window_start.strftime("%H:%M") for w in windows]


@pytest.mark.parametrize("engine_type", [Engine, ColumnarEngine])
def test_advance_closes_the_windows_that_end_by_the_new_watermark(make_tick, engine_type):
    engine = engine_type(EngineConfig(), lambda: CLOSE)
    out = engine.process(session_ticks(make_tick))
    # watermark 20:58 - 10 min = 20:48: the windows ending by 20:45 closed on the data
    assert starts(out.windows)[-1] == "20:40"
    assert engine.advance({"AAPL": at_time("20:47")}).windows == []  # below the watermark
    closed = engine.advance({"AAPL": CLOSE}).windows
    assert starts(closed) == ["20:45", "20:50", "20:55"]
    last = closed[-1]  # ticks 20:55..20:58: prices 100.0..100.3, volumes 65 + 66 + 67 + 68
    assert (last.open, last.close, last.tick_count, last.volume) == (100.0, 100.3, 4, 266)
    late = engine.process([make_tick("20:59", 101.0)])
    assert late.accepted == 0 and late.late[0].kind == "late"
    # a post-close tick opens a window after the close: accepted
    assert engine.process([make_tick("21:03", 101.0)]).accepted == 1
    assert engine.advance({"UNKNOWN": CLOSE}).windows == []


@pytest.mark.parametrize("engine_type", [Engine, ColumnarEngine])
def test_a_repeat_of_a_tick_closed_by_advance_is_a_duplicate_not_late(make_tick, engine_type):
    # Alpha Vantage repeats its recent bars on every poll: after the close they must still be
    # recognised as repeats, in both engines alike
    engine = engine_type(EngineConfig(), lambda: CLOSE)
    ticks = session_ticks(make_tick)
    engine.process(ticks)
    engine.advance({"AAPL": CLOSE})
    again = engine.process(ticks[-3:])
    assert (again.duplicates, again.accepted, again.late) == (3, 0, [])


def stored(store: SqlStore) -> list[Window]:
    return store.recent_windows(1000)


def test_live_stock_windows_close_at_the_session_close_plus_lateness(make_tick):
    clock = [at_time("20:00")]
    store = SqlStore("sqlite://")
    processor = Processor(load_settings(), store, None, clock=lambda: clock[0])
    ticks = session_ticks(make_tick)
    for tick in ticks:  # each arrives 5 s after it happened: a live stream
        clock[0] = tick.event_time + timedelta(seconds=5)
        processor.handle([tick_to_record(tick)])
        processor.close_ended_sessions()
    assert starts(stored(store))[-1] == "20:40"
    clock[0] = CLOSE + LATENESS - timedelta(seconds=1)
    processor.close_ended_sessions()
    assert starts(stored(store))[-1] == "20:40"
    clock[0] = CLOSE + LATENESS
    processor.close_ended_sessions()
    live = stored(store)
    assert starts(live)[-3:] == ["20:45", "20:50", "20:55"]
    # a tick of the closed session that comes later is late: kept as a dead letter
    clock[0] = CLOSE + LATENESS + timedelta(minutes=1)
    processor.handle([tick_to_record(make_tick("20:59", 101.0))])
    assert processor.counters.late == 1 and store.count(dead_letters) == 1
    with store.engine.connect() as conn:
        assert "late" in conn.execute(select(dead_letters.c.reason)).scalar_one()
    # the same windows and z-scores as a replay of the session's ticks, closed at its end
    replay = Engine(EngineConfig(), lambda: CLOSE)
    expected = [*replay.process(ticks).windows, *replay.flush().windows]
    assert [(w.window_start, w.close, w.scores) for w in live] == [
        (w.window_start, w.close, w.scores) for w in expected
    ]
    store.close()


def test_a_backfill_of_a_past_session_closes_on_its_data_not_the_clock(make_tick):
    next_morning = datetime.fromisoformat("2024-03-05T14:00:00+00:00")
    store = SqlStore("sqlite://")
    processor = Processor(load_settings(), store, None, clock=lambda: next_morning)
    processor.handle([tick_to_record(t) for t in session_ticks(make_tick)[:30]])
    processor.close_ended_sessions()
    processor.handle([tick_to_record(t) for t in session_ticks(make_tick)[30:]])
    # nothing of the backfill was refused, and its windows close on its watermark
    assert processor.counters.late == 0 and processor.counters.accepted == 59
    assert starts(stored(store))[-1] == "20:40"
    store.close()


def test_crypto_and_extended_hours_are_left_to_the_watermark(make_tick):
    clock = [at_time("21:30")]
    store = SqlStore("sqlite://")
    processor = Processor(load_settings(), store, None, clock=lambda: clock[0])
    after_close = [make_tick(f"21:{m:02d}", 100.0) for m in range(20, 30)]  # 16:20-16:29 ET
    btc = [make_tick(f"21:{m:02d}", 1.0, symbol="BTC", asset_type=CRYPTO) for m in range(25, 30)]
    processor.handle([tick_to_record(t) for t in [*after_close, *btc]])
    clock[0] = at_time("23:59")
    processor.close_ended_sessions()
    assert stored(store) == []
    store.close()
