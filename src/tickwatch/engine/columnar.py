"""The columnar engine: `Engine`'s exact semantics over TickBatch micro-batches (numpy).

Same rules as `windows.WindowAssembler` + `pipeline.Engine` (the tests in
tests/unit/engine/test_columnar.py hold the two together), computed per batch instead of per
tick. The per-tick running watermark is a segmented cumulative maximum of event times per
symbol. A tick whose event time is above every earlier event time of its symbol (the common
case) can be neither a duplicate nor late, so a symbol whose ticks in the batch are all such
"new maxima" is handled with array operations only. The other symbols (out-of-order ticks,
repeats) replay the reference rules tick by tick on compact integer state, so duplicates,
late ticks and their reasons are those of the reference.

State per symbol: the largest event time, the watermark of its last window close (which fixes
what the duplicate memory still holds: windows ending within `lookback` windows of it), the
last `lookback` values of each feature. Ticks of open windows and the (source, event time)
keys of recently closed windows live in flat arrays, not Python objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from tickwatch.engine.batch import ASSET_TYPES, TickBatch
from tickwatch.engine.colscore import Scores, WindowColumns, score, severity_codes, summarize
from tickwatch.engine.pipeline import Engine, EngineConfig, EngineOutput
from tickwatch.engine.windows import from_micros
from tickwatch.errors import ConfigError
from tickwatch.model import Anomaly, Feature, Rejected, Score, Severity, Tick, Window
from tickwatch.normalize import asset_conflict, tick_payload

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]
NONE = np.iinfo(np.int64).min
Columns = dict[str, npt.NDArray[Any]]  # the open store: one array per _OPEN_COLUMNS name
_US = timedelta(microseconds=1)
_FEATURES = tuple(Feature)
_SEVERITIES = (None, Severity.LOW, Severity.MEDIUM, Severity.HIGH)
_ROWS = (  # the per-row arrays of a TickBatch
    *("symbol_code", "source_code", "asset_code", "event", "ingest"),
    *("price", "volume", "open", "high", "low", "close"),
)
_OPEN_COLUMNS = ("sym", "src", "event", "ingest", "price", "volume", "open", "high", "low", "close")


@dataclass(slots=True)
class ColumnarOutput:
    """What one call produced, as columns; `to_engine_output` gives the reference's rows."""

    windows: WindowColumns | None = None
    scores: Scores | None = None
    severity: npt.NDArray[np.int8] | None = None
    late: list[Rejected] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    detected_at: datetime | None = None
    symbols: list[str] = field(default_factory=list)
    assets: npt.NDArray[np.int8] | None = None

    @property
    def window_count(self) -> int:
        return 0 if self.windows is None else len(self.windows.sym)

    @property
    def anomaly_count(self) -> int:
        return 0 if self.severity is None else int(np.count_nonzero(self.severity))

    def to_engine_output(self) -> EngineOutput:
        out = EngineOutput(late=self.late, accepted=self.accepted, duplicates=self.duplicates)
        w, s = self.windows, self.scores
        if w is None or s is None or self.severity is None or self.assets is None:
            return out
        size = self._size
        cols = [
            a.tolist()
            for a in (w.open, w.high, w.low, w.close, w.volume, w.vwap, w.price_return_pct)
        ]
        opens, highs, lows, closes, volumes, vwaps, returns = cols
        volatility = w.volatility.tolist()
        per_feature = [
            list(map(Score, *(_nullable(a[k]) for a in (s.mean, s.std, s.z)))) for k in range(3)
        ]
        counts = w.tick_count.tolist()
        for i, (sym, start) in enumerate(zip(w.sym.tolist(), w.start.tolist(), strict=True)):
            symbol, asset = self.symbols[sym], ASSET_TYPES[self.assets[sym]]
            begin, end = from_micros(start), from_micros(start + size)
            scores = dict(zip(_FEATURES, (p[i] for p in per_feature), strict=True))
            out.windows.append(
                Window(
                    symbol,
                    asset,
                    begin,
                    end,
                    opens[i],
                    highs[i],
                    lows[i],
                    closes[i],
                    _opt(volumes[i]),
                    counts[i],
                    _opt(vwaps[i]),
                    returns[i],
                    _opt(volatility[i]),
                    scores,
                )
            )
        out.anomalies = self.anomalies()
        return out

    def anomalies(self) -> list[Anomaly]:
        """The anomaly rows alone (window by window, features in `Feature` order), without
        building a `Window` per window: the replay's sinks take the windows as columns."""
        w, s = self.windows, self.scores
        if w is None or s is None or self.severity is None or self.assets is None:
            return []
        values, means, stds, zs = w.features(), s.mean, s.std, s.z
        found = []
        for i, k in zip(*np.nonzero(self.severity.T), strict=True):
            assert self.detected_at is not None
            sym, start = int(w.sym[i]), int(w.start[i])
            found.append(
                Anomaly(
                    self.symbols[sym],
                    ASSET_TYPES[self.assets[sym]],
                    from_micros(start),
                    from_micros(start + self._size),
                    _FEATURES[k].anomaly_type,
                    float(values[k, i]),
                    float(means[k, i]),
                    float(stds[k, i]),
                    float(zs[k, i]),
                    _SEVERITIES[self.severity[k, i]],  # type: ignore[arg-type]
                    self.detected_at,
                )
            )
        return found

    _size: int = 0


def make_engine(config: EngineConfig, clock: Callable[[], datetime]) -> Engine | ColumnarEngine:
    """The columnar engine where it implements the detector (zscore), else the reference."""
    if config.detector == "zscore":
        return ColumnarEngine(config, clock)
    return Engine(config, clock)


def _nullable(values: F64) -> list[float | None]:
    listed: list[float | None] = np.where(np.isnan(values), None, values).tolist()  # type: ignore[call-overload]
    return listed


def _opt(value: float) -> float | None:
    return None if value != value else value


class ColumnarEngine:
    """Drop-in for `Engine` with the `zscore` detector: `process_batch`, `flush`, `restore`."""

    def __init__(self, config: EngineConfig, clock: Callable[[], datetime]) -> None:
        if config.detector != "zscore":
            raise ConfigError(
                f"the columnar engine implements DETECTOR=zscore, not {config.detector!r}"
            )
        self.config = config
        self.clock = clock
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
        self._open: Columns = {c: np.zeros(0, np.float64) for c in _OPEN_COLUMNS}
        for c in ("sym", "src"):
            self._open[c] = np.zeros(0, np.int32)
        self._open["event"] = np.zeros(0, np.int64)
        self._open["ingest"] = np.zeros(0, np.int64)
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
        pool = {c: np.concatenate([self._open[c], taken[c]]) for c in _OPEN_COLUMNS}
        pool_start = pool["event"] - pool["event"] % self.size
        watermark = self._max[pool["sym"]] - self.lateness
        closing = pool_start + self.size <= watermark
        self._note_closes(sym, event, accepted, pool, pool_start, closing)
        self._close(pool, closing, out)
        return out

    def process(self, ticks: Iterable[Tick]) -> EngineOutput:
        """`Engine.process`: Tick objects in, rows out (for record-at-a-time callers)."""
        return self.process_batch(TickBatch.from_ticks(list(ticks))).to_engine_output()

    def advance(self, watermarks: dict[str, datetime]) -> EngineOutput:
        """`Engine.advance`: raise the watermark of each symbol and close what that ends."""
        out = ColumnarOutput()
        for symbol, watermark in watermarks.items():
            i = self._sym_index.get(symbol)
            if i is not None:
                raised = (watermark - from_micros(0)) // _US + self.lateness
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
        """`Engine.flush`: close every open window."""
        return self.flush_batch().to_engine_output()

    def flush_batch(self) -> ColumnarOutput:
        """Close every open window (end of input); the duplicate memory keeps their keys."""
        out = ColumnarOutput()
        pool = self._open
        self._close(pool, np.ones(len(pool["sym"]), bool), out)
        return out

    @property
    def assembler(self) -> ColumnarEngine:
        """Callers reach `open_ticks` through `engine.assembler`, as on the reference Engine."""
        return self

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
            *(o[c][order] for c in _OPEN_COLUMNS[2:]),
        )
        return [batch.tick(i) for i in range(len(batch))]

    def restore(self, history: Iterable[Window]) -> None:
        """Rebuild baselines from stored windows (oldest first), as `Engine.restore`."""
        last: dict[int, Window] = {}
        for window in history:
            i = self._symbol_id(window.symbol, ASSET_TYPES.index(window.asset_type))
            row = [np.nan if (v := window.feature(f)) is None else v for f in _FEATURES]
            self._history[i] = np.concatenate([self._history[i][:, 1:], np.array(row)[:, None]], 1)
            last[i] = window
        for i, window in last.items():
            resumed = (window.window_end - from_micros(0)) // _US + self.lateness
            self._max[i] = resumed if self._max[i] == NONE else max(int(self._max[i]), resumed)

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
        self._open = {c: pool[c][~closing] for c in _OPEN_COLUMNS}
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
        values = windows.features()
        scores, history = score(
            windows.sym, values, self._history[np.unique(windows.sym)], self.config.min_history
        )
        self._history[np.unique(windows.sym)] = history
        c = self.config
        out.windows = windows
        out.scores = scores
        out.severity = severity_codes(scores.z, c.z_threshold, c.severity_medium, c.severity_high)
        out.symbols = self.symbols
        out.assets = self._asset
        out._size = self.size
        if out.severity.any():
            out.detected_at = self.clock()

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
