"""The oracle's window assembly: event-time tumbling windows per symbol, closed by a watermark.

- A tick belongs to the window [start, start + size) with start = floor(event_time / size),
  aligned to the epoch.
- Watermark of a symbol = largest event time seen for it - allowed lateness. Every open window
  whose end is <= the watermark closes, oldest first.
- A tick whose window end is <= the watermark is late: it is returned as rejected, never added
  to a closed window.
- A symbol's watermark can also be raised from outside (`advance`): a stock whose exchange
  session has ended gets no more ticks until the next morning, so its last windows are closed
  at the session's close instead of waiting for that next tick.
- Duplicates (same source, symbol, event time) count once: the first one wins. Keys are kept
  for open windows and for `retention` closed windows behind the watermark, so a source that
  repeats recent history (Alpha Vantage returns the same bars on every poll) is recognised as
  repeating, not as late.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tickwatch.clock import from_micros, micros
from tickwatch.model import AssetType, Tick

_US = timedelta(microseconds=1)


@dataclass(slots=True)
class ClosedWindow:
    symbol: str
    asset_type: AssetType
    start: datetime
    end: datetime
    ticks: list[Tick]  # in observation order


@dataclass(slots=True)
class _SymbolState:
    asset_type: AssetType
    max_event: int | None = None
    open: dict[int, list[tuple[int, str, Tick]]] = field(default_factory=dict)
    seen: dict[int, set[tuple[str, int]]] = field(default_factory=dict)


@dataclass(slots=True)
class AddResult:
    closed: list[ClosedWindow] = field(default_factory=list)
    late_reason: str | None = None
    duplicate: bool = False


class WindowAssembler:
    def __init__(self, size: timedelta, lateness: timedelta, retention_windows: int) -> None:
        self.size = size // _US
        self.lateness = lateness // _US
        self.retention = retention_windows * self.size
        self.symbols: dict[str, _SymbolState] = {}

    def watermark(self, symbol: str) -> datetime | None:
        state = self.symbols.get(symbol)
        if state is None or state.max_event is None:
            return None
        return from_micros(state.max_event - self.lateness)

    def add(self, tick: Tick) -> AddResult:
        state = self.symbols.get(tick.symbol)
        if state is None:
            state = self.symbols[tick.symbol] = _SymbolState(tick.asset_type)
        event = micros(tick.event_time)
        start = event - event % self.size
        key = (tick.source, event)
        result = AddResult()
        seen = state.seen.get(start)
        if seen is not None and key in seen:
            result.duplicate = True
            return result
        if state.max_event is None or event > state.max_event:
            state.max_event = event
        watermark = state.max_event - self.lateness
        if start + self.size <= watermark:
            result.late_reason = (
                f"late: window {from_micros(start).isoformat()} closed at watermark "
                f"{from_micros(watermark).isoformat()}"
            )
            return result
        if seen is None:
            seen = state.seen[start] = set()
            state.open[start] = []
        seen.add(key)
        state.open[start].append((event, tick.source, tick))
        if min(state.open) + self.size <= watermark:
            result.closed = self._close(tick.symbol, state, watermark)
        return result

    def advance(self, symbol: str, watermark: datetime) -> list[ClosedWindow]:
        """Raise `symbol`'s watermark to at least `watermark` and close what that ends."""
        state = self.symbols.get(symbol)
        if state is None:
            return []
        raised = micros(watermark) + self.lateness
        if state.max_event is None or raised > state.max_event:
            state.max_event = raised
        mark = state.max_event - self.lateness
        if state.open and min(state.open) + self.size <= mark:
            return self._close(symbol, state, mark)
        return []

    def close_all(self) -> list[ClosedWindow]:
        """Close every open window (end of input)."""
        closed: list[ClosedWindow] = []
        for symbol, state in self.symbols.items():
            closed.extend(self._close(symbol, state, None))
        return closed

    def open_ticks(self) -> list[Tick]:
        """Every tick of every open window (what a restart would need to re-feed)."""
        return [
            tick
            for state in self.symbols.values()
            for items in state.open.values()
            for _, _, tick in items
        ]

    def restore(self, symbol: str, asset_type: AssetType, last_window_end: datetime) -> None:
        """Resume a symbol after a restart: windows up to `last_window_end` are closed."""
        state = self.symbols.setdefault(symbol, _SymbolState(asset_type))
        resumed = micros(last_window_end) + self.lateness
        state.max_event = resumed if state.max_event is None else max(state.max_event, resumed)

    def _close(self, symbol: str, state: _SymbolState, watermark: int | None) -> list[ClosedWindow]:
        ready = sorted(
            start for start in state.open if watermark is None or start + self.size <= watermark
        )
        closed = []
        for start in ready:
            items = state.open.pop(start)
            items.sort(key=lambda item: (item[0], item[1]))
            closed.append(
                ClosedWindow(
                    symbol,
                    state.asset_type,
                    from_micros(start),
                    from_micros(start + self.size),
                    [tick for _, _, tick in items],
                )
            )
        if watermark is not None:
            horizon = watermark - self.retention
            for start in [s for s in state.seen if s + self.size <= horizon]:
                del state.seen[start]
        return closed
