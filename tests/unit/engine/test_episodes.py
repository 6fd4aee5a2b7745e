"""Alert episodes, market-wide events and notices, on hand-built crypto series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from tickwatch.engine.alert_score import AlertConfig, Bar
from tickwatch.engine.episodes import DATA_FAULT, MARKET, AlertEngine, AlertOutput, EpisodeConfig
from tickwatch.model import AssetType

T0 = datetime(2024, 3, 4, 0, 0, tzinfo=UTC)
W = timedelta(minutes=5)


def series(symbol: str, n: int, shocks: dict[int, float], volume_at: dict[int, float]) -> list[Bar]:
    """Closes zigzag by 0.1 % (|move| constant); `shocks[i]` adds a move of that many % at
    window i, `volume_at[i]` multiplies its volume."""
    out, close = [], 100.0
    for i in range(n):
        move = (0.1 if i % 2 else -0.1) + shocks.get(i, 0.0)
        close *= math.exp(move / 100)
        volume = 1000.0 * volume_at.get(i, 1.0)
        out.append(Bar(symbol, AssetType.CRYPTO, T0 + i * W, close, close, close, close, volume, 5))
    return out


def run(bars: list[Bar], **episodes: object) -> tuple[AlertEngine, AlertOutput]:
    engine = AlertEngine(AlertConfig(), EpisodeConfig(**episodes))  # type: ignore[arg-type]
    bars = sorted(bars, key=lambda b: (b.window_start, b.symbol))
    out = engine.process(bars)
    out.merge(engine.flush())
    return engine, out


def test_windows_within_the_gap_are_one_episode_then_it_closes() -> None:
    # shocks at 40, 42 (2 windows later: same episode), 60 (new episode after a quiet gap)
    bars = series("X", 80, {40: 2.0, 42: 2.0, 60: -2.0}, {40: 4, 42: 4, 60: 4})
    _, out = run(bars, gap_windows=6)
    alerts = sorted(out.alerts.values(), key=lambda a: a.opened_at)
    assert [(a.opened_at, a.last_window_start, a.window_count) for a in alerts] == [
        (T0 + 40 * W, T0 + 42 * W, 2),
        (T0 + 60 * W, T0 + 60 * W, 1),
    ]
    # closed when window 49 arrived (42 + 7 windows > gap of 6): at 42 + 7 windows, market time
    assert alerts[0].closed_at == T0 + 49 * W
    assert alerts[1].closed_at == T0 + 67 * W
    assert alerts[0].kind == MARKET
    assert alerts[0].direction == {"price_spike": "up", "volume_surge": "up"}
    assert alerts[1].direction == {"price_spike": "down", "volume_surge": "up"}
    # window 40 is even: -0.1 % + 2 % = +1.9 %; volume 4001 / 1001 = 4.0x
    assert alerts[0].summary == ("X +1.9% in 5 min on 4.0x usual volume, Mar 04 03:20 UTC")


def test_same_input_same_alert_ids() -> None:
    bars = series("X", 60, {40: 2.0}, {40: 4})
    first = {a.alert_id: a.row() for a in run(bars)[1].alerts.values()}
    second = {a.alert_id: a.row() for a in run(bars)[1].alerts.values()}
    assert first == second and len(first) == 1


def test_many_symbols_at_once_are_one_market_event_and_one_notice() -> None:
    """3 of 4 coins fall 2 % in window 50: one market event links them; the notifier gets one
    `market_event` notice, not three `opened` ones. The 4th symbol alone at 70: one notice."""
    bars = []
    for name in ("A", "B", "C"):
        bars += series(name, 90, {50: -2.0}, {50: 4})
    bars += series("D", 90, {70: 2.5}, {70: 4})
    _, out = run(bars)
    events = list(out.events.values())
    assert len(events) == 1
    event = events[0]
    assert (event.window_start, event.symbols, event.active_symbols) == (T0 + 50 * W, 3, 4)
    assert event.direction == "down" and event.summary.startswith("market-wide: 3 of 4 crypto down")
    linked = sorted(a.symbol for a in out.alerts.values() if a.market_event_id == event.event_id)
    assert linked == ["A", "B", "C"]
    kinds = [(n.kind, (n.alert or {}).get("symbol")) for n in out.notices]
    assert kinds == [("market_event", None), ("opened", "D")]


def test_escalation_is_notified_once() -> None:
    # a 1.5 % move opens (medium), then 3 % and 6 % moves in the next windows escalate to high
    bars = series("X", 70, {50: 1.2, 51: 6.0, 52: 9.0}, {50: 4, 51: 4, 52: 4})
    _, out = run(bars)
    kinds = [n.kind for n in out.notices]
    assert kinds.count("opened") == 1 and kinds.count("escalated") <= 1
    (alert,) = out.alerts.values()
    assert alert.window_count == 3


def test_a_fault_is_its_own_episode_and_never_notified() -> None:
    bars = series("X", 60, {}, {})
    bad = bars[50]
    bars[50] = Bar("X", bad.asset_type, bad.window_start, bad.close * 1.2, bad.close * 1.2,
                   bad.close * 1.2, bad.close * 1.2, 800.0, 1)  # fmt: skip
    _, out = run(bars)
    (alert,) = out.alerts.values()
    assert (alert.kind, alert.opened_at, alert.features) == (DATA_FAULT, T0 + 50 * W, {"bad_print"})
    assert out.notices == []
