"""The engine: validated ticks in as columns (TickBatch), closed windows, scores and anomalies
out as columns (ColumnarOutput). Pure: no I/O; `detected_at` comes from an injected clock.

Rules (DESIGN.md "Window" and "Time"):

- A tick belongs to the window [start, start + size) with start = floor(event_time / size),
  aligned to the epoch, per symbol.
- Watermark of a symbol = largest event time seen for it - allowed lateness. Every open window
  whose end is <= the watermark closes, oldest first, and is scored against the windows of its
  symbol before it (`scoring`, with the detector of the DETECTOR setting).
- A tick whose window end is <= the watermark is late: it is returned as rejected with its
  reason, never added to a closed window.
- A symbol's watermark can also be raised from outside (`advance`): a stock whose exchange
  session has ended gets no more ticks until the next morning, so its last windows are closed
  at the session's close instead of waiting for that next tick.
- Duplicates (same source, symbol, event time) count once: the first one wins. Keys are kept
  for open windows and for `lookback` closed windows behind the watermark of the symbol's last
  close, so a source that repeats recent history (Alpha Vantage returns the same bars on every
  poll) is recognised as repeating, not as late.
- A symbol belongs to the asset type of its first tick; a tick of another one is refused.

How, per batch instead of per tick: the per-tick running watermark is a segmented cumulative
maximum of event times per symbol. A tick whose event time is above every earlier event time
of its symbol (the common case) can be neither a duplicate nor late, so a symbol whose ticks in
the batch are all such "new maxima" is handled with array operations only. The other symbols
(out-of-order ticks, repeats) go tick by tick on compact integer state. The result over a batch
equals the result tick by tick (tests/oracle holds the per-tick definition).

State per symbol: the largest event time, the watermark of its last window close, the last
`lookback` values of each feature. Ticks of open windows and the (source, event time) keys of
recently closed windows live in flat arrays, not Python objects (`snapshot` hands them out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from tickwatch.clock import from_micros, micros
from tickwatch.engine.batch import ASSET_TYPES, TickBatch
from tickwatch.engine.config import EngineConfig
from tickwatch.engine.detectors import Detector, Scores, make_detector
from tickwatch.engine.features import summarize
from tickwatch.engine.output import ColumnarOutput, EngineOutput
from tickwatch.engine.scoring import score, severity_codes
from tickwatch.model import AssetType, Feature, Rejected, Tick, Window
from tickwatch.records import asset_conflict, tick_payload

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
F64 = npt.NDArray[np.float64]
NONE = np.iinfo(np.int64).min
Columns = dict[str, npt.NDArray[Any]]  # the open store: one array per OPEN_COLUMNS name
_US = timedelta(microseconds=1)
_FEATURES = tuple(Feature)
_STOCK = ASSET_TYPES.index(AssetType.STOCK)
_ROWS = (  # the per-row arrays of a TickBatch
    *("symbol_code", "source_code", "asset_code", "event", "ingest"),
    *("price", "volume", "open", "high", "low", "close"),
)
OPEN_COLUMNS = ("sym", "src", "event", "ingest", "price", "volume", "open", "high", "low", "close")


@dataclass(slots=True)
class EngineState:
    """Everything a `ColumnarEngine` needs to resume (`snapshot` / `from_snapshot`), as plain
    arrays: per symbol (index = symbol id) its asset code, largest event time, watermark of its
    last close (NONE for none) and history (symbols, 3, lookback); the open windows' ticks
    (OPEN_COLUMNS; sym and src index `symbols` and `sources`); the duplicate memory's keys of
    closed windows. A stateful detector's own memory (seasonal profiles) is not part of it."""

    symbols: list[str]
    asset_code: I8
    max_event: I64
    close_watermark: I64
    history: F64
    sources: list[str]
    open: Columns
    seen_sym: I32
    seen_src: I32
    seen_event: I64


def make_engine(config: EngineConfig, clock: Callable[[], datetime]) -> ColumnarEngine:
    """The engine for `config` (kept as the one construction point callers share)."""
    return ColumnarEngine(config, clock)


def _empty_open() -> Columns:
    columns: Columns = {c: np.zeros(0, np.float64) for c in OPEN_COLUMNS}
    columns["sym"] = columns["src"] = np.zeros(0, np.int32)
    columns["event"] = columns["ingest"] = np.zeros(0, np.int64)
    return columns


class ColumnarEngine:
    """Ticks in, windows and anomalies out: `process_batch` (columns) or `process` (Tick
    objects), `advance`, `flush`, `restore` (baselines from stored windows)."""

    def __init__(
        self,
        config: EngineConfig,
        clock: Callable[[], datetime],
        detector: Detector | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.detector = detector or make_detector(
            config.detector, config.lookback, config.min_history
        )
        self.size = config.window // _US
        self.lateness = config.allowed_lateness // _US
        self.retention = config.lookback * self.size
        self.symbols: list[str] = []
        self._sym_index: dict[str, int] = {}
        self.sources: list[str] = []
        self._src_index: dict[str, int] = {}
        self._asset = np.zeros(0, np.int8)
        self._max = np.zeros(0, np.int64)
        self._wm_close = np.zeros(0, np.int64)
        self._history = np.zeros((0, 3, config.lookback))
        self._open = _empty_open()
        self._kept: list[tuple[I32, I32, I64]] = []
        self._kept_rows = 0
        self._kept_floor = 0

    # -- public -------------------------------------------------------------------------

    def process_batch(self, batch: TickBatch) -> ColumnarOutput:
        out = ColumnarOutput()
        if len(batch) == 0:
            return out
        sym = self._symbol_ids(batch)
        clash = self._asset[sym] != batch.asset_code
        if clash.any():  # a symbol already a series of the other asset type: refused
            for r in np.flatnonzero(clash).tolist():
                out.late.append(asset_conflict(batch.tick(r), ASSET_TYPES[self._asset[sym[r]]]))
            keep = ~clash
            batch = replace(batch, **{name: getattr(batch, name)[keep] for name in _ROWS})
            sym = sym[keep]
            if len(batch) == 0:
                return out
        src = np.asarray([self._source_id(s) for s in batch.sources], np.int32)[batch.source_code]
        event = batch.event
        start = event - event % self.size
        accepted = self._classify(batch, sym, src, event, start, out)
        taken = {
            "sym": sym[accepted],
            "src": src[accepted],
            "event": event[accepted],
            "ingest": batch.ingest[accepted],
            "price": batch.price[accepted],
            "volume": batch.volume[accepted],
            "open": batch.open[accepted],
            "high": batch.high[accepted],
            "low": batch.low[accepted],
            "close": batch.close[accepted],
        }
        out.accepted = int(np.count_nonzero(accepted))
        pool = {c: np.concatenate([self._open[c], taken[c]]) for c in OPEN_COLUMNS}
        pool_start = pool["event"] - pool["event"] % self.size
        watermark = self._max[pool["sym"]] - self.lateness
        closing = pool_start + self.size <= watermark
        self._note_closes(sym, event, accepted, pool, pool_start, closing)
        self._close(pool, closing, out)
        return out

    def process(self, ticks: Iterable[Tick]) -> EngineOutput:
        """Tick objects in, rows out (for record-at-a-time callers)."""
        return self.process_batch(TickBatch.from_ticks(list(ticks))).to_engine_output()

    def advance(self, watermarks: dict[str, datetime]) -> EngineOutput:
        """Raise the watermark of each symbol to at least the given one and close what that
        ends (a stock's session close)."""
        out = ColumnarOutput()
        for symbol, watermark in watermarks.items():
            i = self._sym_index.get(symbol)
            if i is not None:
                raised = micros(watermark) + self.lateness
                self._max[i] = max(int(self._max[i]), raised)
        pool = self._open
        pool_start = pool["event"] - pool["event"] % self.size
        marks = self._max[pool["sym"]] - self.lateness
        closing = pool_start + self.size <= marks
        closed = np.unique(pool["sym"][closing])
        self._wm_close[closed] = self._max[closed] - self.lateness
        self._close(pool, closing, out)
        return out.to_engine_output()

    def flush(self) -> EngineOutput:
        """Close every open window, as at the end of a replay."""
        return self.flush_batch().to_engine_output()

    def flush_batch(self) -> ColumnarOutput:
        """Close every open window (end of input); the duplicate memory keeps their keys."""
        out = ColumnarOutput()
        pool = self._open
        self._close(pool, np.ones(len(pool["sym"]), bool), out)
        return out

    def watermark(self, symbol: str) -> datetime | None:
        """`symbol`'s watermark (None before its first tick)."""
        i = self._sym_index.get(symbol)
        if i is None or self._max[i] == NONE:
            return None
        return from_micros(int(self._max[i]) - self.lateness)

    def open_ticks(self) -> list[Tick]:
        """Every tick of every open window (what a restart would need to re-feed)."""
        o = self._open
        order = np.lexsort((o["event"], o["sym"]))
        batch = TickBatch(
            self.symbols,
            self.sources,
            o["sym"][order],
            o["src"][order],
            self._asset[o["sym"][order]],
            *(o[c][order] for c in OPEN_COLUMNS[2:]),
        )
        return [batch.tick(i) for i in range(len(batch))]

    def restore(self, history: Iterable[Window]) -> None:
        """Rebuild baselines from stored windows (oldest first) after a restart: they go
        through the detector as if just closed (its scores are dropped), and each symbol
        resumes with its windows up to the last stored one closed."""
        windows = list(history)
        if not windows:
            return
        sym = np.array(
            [self._symbol_id(w.symbol, ASSET_TYPES.index(w.asset_type)) for w in windows],
            np.int32,
        )
        order = np.argsort(sym, kind="stable")  # by symbol, oldest first within one
        start = np.array([micros(w.window_start) for w in windows], np.int64)[order]
        values = np.array(
            [[np.nan if (v := w.feature(f)) is None else v for f in _FEATURES] for w in windows]
        ).T[:, order]
        self._score(sym[order], start, values)
        for i, window in zip(sym.tolist(), windows, strict=True):
            resumed = micros(window.window_end) + self.lateness
            self._max[i] = resumed if self._max[i] == NONE else max(int(self._max[i]), resumed)

    def snapshot(self) -> EngineState:
        """The engine's state as plain arrays (copies), for a store such as Spark's."""
        n = len(self.symbols)
        seen_sym, seen_src, seen_event = self._kept_arrays(None)
        return EngineState(
            symbols=list(self.symbols),
            asset_code=self._asset[:n].copy(),
            max_event=self._max[:n].copy(),
            close_watermark=self._wm_close[:n].copy(),
            history=self._history[:n].copy(),
            sources=list(self.sources),
            open={c: a.copy() for c, a in self._open.items()},
            seen_sym=seen_sym,
            seen_src=seen_src,
            seen_event=seen_event,
        )

    @classmethod
    def from_snapshot(
        cls, config: EngineConfig, clock: Callable[[], datetime], state: EngineState
    ) -> ColumnarEngine:
        """An engine resumed from `snapshot()` of one built with the same window, lateness
        and lookback settings."""
        engine = cls(config, clock)
        for name, asset in zip(state.symbols, state.asset_code.tolist(), strict=True):
            engine._symbol_id(name, asset)
        n = len(state.symbols)
        engine._max[:n] = state.max_event
        engine._wm_close[:n] = state.close_watermark
        engine._history[:n] = state.history
        for name in state.sources:
            engine._source_id(name)
        engine._open = {c: np.asarray(state.open[c]) for c in OPEN_COLUMNS}
        if len(state.seen_event):
            engine._kept = [(state.seen_sym, state.seen_src, state.seen_event)]
            engine._kept_rows = engine._kept_floor = len(state.seen_event)
        return engine

    # -- per tick: watermark, duplicates, late ---------------------------------------------

    def _classify(
        self, batch: TickBatch, sym: I32, src: I32, event: I64, start: I64, out: ColumnarOutput
    ) -> npt.NDArray[np.bool_]:
        """Accepted-tick mask; updates each symbol's max event; fills late and duplicates."""
        order = _stable_order(sym)
        s, e = sym[order], event[order]
        first = np.ones(len(s), bool)
        first[1:] = s[1:] != s[:-1]
        running = segment_cummax(e, first)
        before = np.empty_like(running)
        before[0] = NONE
        before[1:] = np.where(first[1:], NONE, running[:-1])
        in_batch = before
        before = np.maximum(before, self._max[s])
        new_max = e > before
        # a repeat of the instant an earlier tick of this batch raised the maximum to: its
        # window is open (the maximum's window always is), so it is a duplicate when the same
        # source already sent that instant, else an accepted tick; no tick-by-tick replay
        repeat = ~first & (e == in_batch) & (in_batch >= self._max[s])
        last = np.ones(len(s), bool)
        last[:-1] = first[1:]
        slow = np.unique(s[~(new_max | repeat)])
        fast = ~np.isin(s, slow)
        fast_last = last & fast
        self._max[s[fast_last]] = np.maximum(running[fast_last], self._max[s[fast_last]])
        accepted = np.ones(len(sym), bool)
        if (repeat & fast).any():
            self._drop_repeats(order, fast, new_max, repeat, src, accepted, out)
        if len(slow):
            self._replay_slow(batch, slow, sym, src, event, start, accepted, out)
        return accepted

    @staticmethod
    def _drop_repeats(
        order: npt.NDArray[np.intp],
        fast: npt.NDArray[np.bool_],
        new_max: npt.NDArray[np.bool_],
        repeat: npt.NDArray[np.bool_],
        src: I32,
        accepted: npt.NDArray[np.bool_],
        out: ColumnarOutput,
    ) -> None:
        """Refuse the repeats (rows in `order`, sorted by symbol) whose source already sent
        their instant: a run of one instant starts at the tick that raised the maximum, so
        a (run, source) pair seen before in the run is a duplicate."""
        rows = np.flatnonzero(fast)
        run = np.cumsum(new_max[rows])  # in a fast symbol every tick raises or repeats
        pair_src = src[order[rows]]
        by_pair = np.lexsort((np.arange(len(rows)), pair_src, run))
        again = np.zeros(len(rows), bool)
        same = (run[by_pair][1:] == run[by_pair][:-1]) & (
            pair_src[by_pair][1:] == pair_src[by_pair][:-1]
        )
        again[by_pair[1:]] = same
        again &= repeat[rows]
        accepted[order[rows[again]]] = False
        out.duplicates += int(np.count_nonzero(again))

    def _replay_slow(
        self,
        batch: TickBatch,
        slow: I32,
        sym: I32,
        src: I32,
        event: I64,
        start: I64,
        accepted: npt.NDArray[np.bool_],
        out: ColumnarOutput,
    ) -> None:
        """The reference rules, tick by tick, for symbols with out-of-order or repeated ticks."""
        size, lateness, retention = self.size, self.lateness, self.retention
        seen: dict[int, dict[int, set[tuple[int, int]]]] = {int(i): {} for i in slow}
        opened: dict[int, set[int]] = {int(i): set() for i in slow}
        o = self._open
        mask = np.isin(o["sym"], slow)
        for i, j, ev in zip(
            o["sym"][mask].tolist(), o["src"][mask].tolist(), o["event"][mask].tolist(), strict=True
        ):
            seen[i].setdefault(ev - ev % size, set()).add((j, ev))
            opened[i].add(ev - ev % size)
        for i, j, ev in self._kept_keys(slow):
            seen[i].setdefault(ev - ev % size, set()).add((j, ev))
        maxima = {int(i): int(self._max[i]) for i in slow}
        closes = {int(i): int(self._wm_close[i]) for i in slow}
        rows = np.flatnonzero(np.isin(sym, slow))
        for r, i, j, ev, st in zip(
            rows.tolist(),
            sym[rows].tolist(),
            src[rows].tolist(),
            event[rows].tolist(),
            start[rows].tolist(),
            strict=True,
        ):
            window_seen = seen[i].get(st)
            if window_seen is not None and (j, ev) in window_seen:
                out.duplicates += 1
                accepted[r] = False
                continue
            if ev > maxima[i]:
                maxima[i] = ev
            watermark = maxima[i] - lateness
            if st + size <= watermark:
                accepted[r] = False
                tick = batch.tick(r)
                out.late.append(
                    Rejected(
                        "late",
                        f"late: window {from_micros(st).isoformat()} closed at watermark "
                        f"{from_micros(watermark).isoformat()}",
                        tick_payload(tick),
                        tick.source,
                        tick.symbol,
                        tick.ingest_time,
                    )
                )
                continue
            seen[i].setdefault(st, set()).add((j, ev))
            opened[i].add(st)
            if min(opened[i]) + size <= watermark:
                opened[i] = {s for s in opened[i] if s + size > watermark}
                closes[i] = watermark
                horizon = watermark - retention
                seen[i] = {s: k for s, k in seen[i].items() if s + size > horizon}
        for i in maxima:
            self._max[i] = maxima[i]
            self._wm_close[i] = closes[i]

    # -- closing windows ----------------------------------------------------------------------

    def _note_closes(
        self,
        sym: I32,
        event: I64,
        accepted: npt.NDArray[np.bool_],
        pool: Columns,
        pool_start: I64,
        closing: npt.NDArray[np.bool_],
    ) -> None:
        """Watermark of the last close of each symbol that closed windows in this batch.

        For a symbol on the fast path the watermark rises with every tick, so the last close
        is the first tick whose watermark reaches the newest closing window's end.
        """
        if not closing.any():
            return
        newest = np.full(len(self._max), NONE, np.int64)
        np.maximum.at(newest, pool["sym"][closing], pool_start[closing] + self.size)
        marks = event[accepted] - self.lateness
        owners = sym[accepted]
        reach = marks >= newest[owners]
        found = np.full(len(self._max), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(found, owners[reach], marks[reach])
        hit = found != np.iinfo(np.int64).max
        slow_done = self._wm_close >= newest  # already set tick by tick by `_replay_slow`
        update = hit & (newest != NONE) & ~slow_done
        self._wm_close[update] = found[update]

    def _close(
        self,
        pool: Columns,
        closing: npt.NDArray[np.bool_],
        out: ColumnarOutput,
    ) -> None:
        self._open = {c: pool[c][~closing] for c in OPEN_COLUMNS}
        if not closing.any():
            return
        rows = np.flatnonzero(closing)
        sym, event = pool["sym"][rows], pool["event"][rows]
        self._keep(sym, pool["src"][rows], event)
        rows = rows[self._observation_order(sym, pool["src"][rows], event)]
        sym, event = pool["sym"][rows], pool["event"][rows]
        bar = tuple(pool[c][rows] for c in ("open", "high", "low", "close"))
        windows = summarize(
            sym,
            event - event % self.size,
            pool["price"][rows],
            pool["volume"][rows],
            bar,  # type: ignore[arg-type]
        )
        scores = self._score(windows.sym, windows.start, windows.features())
        c = self.config
        out.windows = windows
        out.scores = scores
        out.severity = severity_codes(scores.z, c.z_threshold, c.severity_medium, c.severity_high)
        out.symbols = self.symbols
        out.assets = self._asset
        out.size = self.size
        if out.severity.any():
            out.detected_at = self.clock()

    def _score(self, sym: I32, start: I64, values: F64) -> Scores:
        """Scores of windows sorted by (symbol, start); their values join the histories."""
        touched = np.unique(sym)
        scores, history = score(
            self.detector, sym, start, values, self._history[touched], self._asset[sym] == _STOCK
        )
        self._history[touched] = history
        return scores

    def _observation_order(self, sym: I32, src: I32, event: I64) -> npt.NDArray[np.intp]:
        """Order by symbol, event time, source name (window start follows event time).

        Ticks usually come sorted by event time already; then a stable radix sort on the
        symbol is enough. Same-instant ticks of several sources fall back to a full lexsort.
        """
        if len(event) > 1 and bool(np.all(event[1:] >= event[:-1])):
            order = _stable_order(sym)
        else:
            order = np.lexsort((event, sym))
        s, e = sym[order], event[order]
        if len(self.sources) > 1 and bool(np.any((s[1:] == s[:-1]) & (e[1:] == e[:-1]))):
            rank = np.argsort(np.argsort(np.array(self.sources, dtype=object)))
            order = np.lexsort((rank[src], event, sym))
        return order

    # -- duplicate memory ----------------------------------------------------------------------

    def _keep(self, sym: I32, src: I32, event: I64) -> None:
        self._kept.append((sym, src, event))
        self._kept_rows += len(sym)
        if self._kept_rows > 2 * self._kept_floor + 100_000:
            kept = self._kept_arrays(None)
            self._kept = [kept]
            self._kept_rows = self._kept_floor = len(kept[0])

    def _kept_keys(self, only: I32) -> Iterable[tuple[int, int, int]]:
        sym, src, event = self._kept_arrays(only)
        return zip(sym.tolist(), src.tolist(), event.tolist(), strict=True)

    def _kept_arrays(self, only: I32 | None) -> tuple[I32, I32, I64]:
        """Keys of closed windows the reference still remembers (of symbols `only`)."""
        if not self._kept:
            return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
        sym = np.concatenate([k[0] for k in self._kept])
        src = np.concatenate([k[1] for k in self._kept])
        event = np.concatenate([k[2] for k in self._kept])
        close = self._wm_close[sym]
        keep = (close == NONE) | (event - event % self.size + self.size > close - self.retention)
        if only is not None:
            keep &= np.isin(sym, only)
        return sym[keep], src[keep], event[keep]

    # -- names ---------------------------------------------------------------------------------

    def _symbol_ids(self, batch: TickBatch) -> I32:
        firsts = np.full(len(batch.symbols), -1, np.int64)
        firsts[batch.symbol_code[::-1]] = np.arange(len(batch) - 1, -1, -1)  # first row wins
        ids = np.zeros(len(batch.symbols), np.int32)
        for code, row in enumerate(firsts.tolist()):
            if row >= 0:
                ids[code] = self._symbol_id(batch.symbols[code], int(batch.asset_code[row]))
        return ids[batch.symbol_code]

    def _symbol_id(self, name: str, asset: int) -> int:
        i = self._sym_index.get(name)
        if i is not None:
            return i
        i = self._sym_index[name] = len(self.symbols)
        self.symbols.append(name)
        if i >= len(self._max):
            grow = max(16, len(self._max))
            self._asset = np.concatenate([self._asset, np.zeros(grow, np.int8)])
            self._max = np.concatenate([self._max, np.full(grow, NONE, np.int64)])
            self._wm_close = np.concatenate([self._wm_close, np.full(grow, NONE, np.int64)])
            self._history = np.concatenate(
                [self._history, np.full((grow, 3, self.config.lookback), np.nan)]
            )
        self._asset[i] = asset
        return i

    def _source_id(self, name: str) -> int:
        i = self._src_index.get(name)
        if i is None:
            i = self._src_index[name] = len(self.sources)
            self.sources.append(name)
        return i


def _stable_order(keys: I32) -> npt.NDArray[np.intp]:
    """Stable argsort of small non-negative ints (numpy radix-sorts 16-bit keys)."""
    if len(keys) and int(keys.max()) < 2**15:
        return np.argsort(keys.astype(np.int16), kind="stable")
    return np.argsort(keys, kind="stable")


def segment_cummax(values: I64, first: npt.NDArray[np.bool_]) -> I64:
    """Running maximum restarting at each `first`, by lifting each segment above the last."""
    group = np.cumsum(first) - 1
    lows = np.minimum.reduceat(values, np.flatnonzero(first))
    highs = np.maximum.reduceat(values, np.flatnonzero(first))
    spans = highs - lows + 1
    if spans.sum(dtype=np.float64) < 2.0**62:
        base = np.zeros(len(spans), np.int64)
        np.cumsum(spans[:-1], out=base[1:])
        lifted = values - lows[group] + base[group]
        result: I64 = np.maximum.accumulate(lifted) - base[group] + lows[group]
        return result
    result = values.copy()
    for a, b in zip(np.flatnonzero(first), [*np.flatnonzero(first)[1:], len(values)], strict=True):
        result[a:b] = np.maximum.accumulate(values[a:b])
    return result
