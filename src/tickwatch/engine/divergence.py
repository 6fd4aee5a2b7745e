"""Cross-venue divergence: one asset on several venues whose prices part for longer than a blip.

Ticks with the same canonical `symbol` and a different `source` are one asset on two venues.
Everything runs on event time; nothing here reads a clock or does I/O.

- A venue's **price** is its latest tick's price; it is **current** while that tick is at most
  `stale` older than the symbol's newest event time (a venue that stopped sending is not
  compared with one that is still trading).
- The **gap** of two current venues is ``|p_a - p_b| / ((p_a + p_b) / 2) * 10_000`` bps.
- A pair **diverges** from the first tick at which its gap exceeds `bps` (`started_at`) to the
  first tick at which it is back within `bps` (`ended_at`). It is **flagged** only once it has
  lasted `seconds` (a tick at or after ``started_at + seconds`` still sees the gap); shorter
  ones are blips, counted in `blips` and never stored. `max_bps` is the widest gap seen.
- **Which venue looks off** (`offender`), judged at the widest gap: with a third current venue,
  the one of the pair farther from the median of all current venues (the odd one out); with
  two, the one that moved farther from its own price at the pair's last agreeing tick (the
  other held its path). Empty when neither can be told (no agreeing tick yet).
- **Kind** (docs/DETECTION.md): `data_fault` when the widest gap reaches `fault_bps`, when the
  divergence ends with the offender back within `bps` of its own price before it (an excursion
  no other venue followed: a bad print or a broken feed), or when a venue goes quiet during
  it; `dislocation` otherwise (the other venue followed the offender, which led a real move,
  or the gap is still open). The kind of an open divergence is provisional.

One venue per symbol costs a dict lookup per tick: no prices are kept until a second venue
of the symbol appears.

>>> from datetime import UTC, datetime, timedelta
>>> from tickwatch.model import AssetType, Tick
>>> t0 = datetime(2024, 1, 1, tzinfo=UTC)
>>> def tick(venue, second, price):
...     at = t0 + timedelta(seconds=second)
...     return Tick(venue, AssetType.CRYPTO, "BTC-USD", at, at, price)
>>> tracker = DivergenceTracker(bps=50, seconds=30, fault_bps=1000, stale=60)
>>> [row] = tracker.observe([tick("a", 0, 100), tick("b", 1, 100), tick("a", 2, 100),
...     tick("b", 10, 102), tick("a", 20, 100), tick("a", 45, 100), tick("b", 50, 100)])
>>> row.offender, row.kind, round(row.max_bps, 2), (row.ended_at - row.started_at).seconds
('b', 'data_fault', 198.02, 40)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

import numpy as np

from tickwatch.engine.batch import TickBatch
from tickwatch.model import AssetType, Tick

DATA_FAULT = "data_fault"
DISLOCATION = "dislocation"
VENUE_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class Divergence:
    """One flagged divergence of a pair of venues (`venues` is `a|b`, sorted)."""

    symbol: str
    venues: str
    started_at: datetime
    asset_type: AssetType
    ended_at: datetime | None
    max_bps: float
    max_at: datetime
    offender: str
    kind: str
    summary: str

    def as_row(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "venues": self.venues,
            "started_at": self.started_at,
            "asset_type": self.asset_type.value,
            "ended_at": self.ended_at,
            "max_bps": self.max_bps,
            "max_at": self.max_at,
            "offender": self.offender,
            "kind": self.kind,
            "summary": self.summary,
        }


@dataclass(slots=True)
class _Episode:
    start: datetime
    max_bps: float
    max_at: datetime
    offender: str
    before: dict[str, float] | None  # each venue's price at the pair's last agreeing tick
    flagged: bool


@dataclass(slots=True)
class _Symbol:
    asset_type: AssetType
    now: datetime
    quotes: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    agreed: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    open: dict[tuple[str, str], _Episode] = field(default_factory=dict)


class DivergenceTracker:
    def __init__(self, bps: float, seconds: float, fault_bps: float, stale: float) -> None:
        self.bps = bps
        self.seconds = timedelta(seconds=seconds)
        self.fault_bps = fault_bps
        self.stale = timedelta(seconds=stale)
        self.blips = 0
        self._first: dict[str, str] = {}  # the first venue seen of each symbol
        self._multi: dict[str, _Symbol] = {}  # symbols seen on two venues or more

    def observe_batch(self, batch: TickBatch) -> list[Divergence]:
        """`observe` for a columnar batch: only the rows of symbols seen on two venues or more
        (in this batch or before) become ticks. A batch from one source costs a look-up per
        symbol; one from several sources a `np.unique` of its (symbol, source) codes."""
        if len(batch.sources) == 1:
            (source,) = batch.sources
            codes_of: Iterable[int] = range(len(batch.symbols))
            pairs = [(s, source) for s in batch.symbols]
        else:
            width = len(batch.sources)
            codes = np.unique(batch.symbol_code.astype(np.int64) * width + batch.source_code)
            codes_of = (codes // width).tolist()
            pairs = [(batch.symbols[c // width], batch.sources[c % width]) for c in codes.tolist()]
        watched = {
            code
            for code, (symbol, source) in zip(codes_of, pairs, strict=True)
            if self._first.setdefault(symbol, source) != source or symbol in self._multi
        }
        if not watched:
            return []
        rows = np.flatnonzero(np.isin(batch.symbol_code, list(watched)))
        return self.observe(batch.tick(int(i)) for i in rows)

    def observe(self, ticks: Iterable[Tick]) -> list[Divergence]:
        """Feed ticks in arrival order; the divergences flagged, grown or ended by them."""
        changed: dict[tuple[str, str, datetime], Divergence] = {}
        for tick in ticks:
            first = self._first.setdefault(tick.symbol, tick.source)
            if first == tick.source and tick.symbol not in self._multi:
                continue
            for row in self._observe(tick):
                changed[(row.symbol, row.venues, row.started_at)] = row
        return list(changed.values())

    def resume(self, rows: Iterable[Divergence]) -> None:
        """Carry on the open divergences stored before a restart, so one that lasts across it
        keeps its start (its key) instead of being stored twice."""
        for row in rows:
            if row.ended_at is not None:
                continue
            a, _, b = row.venues.partition(VENUE_SEPARATOR)
            state = self._multi.setdefault(row.symbol, _Symbol(row.asset_type, row.started_at))
            state.now = max(state.now, row.max_at)
            self._first.setdefault(row.symbol, a)
            episode = _Episode(row.started_at, row.max_bps, row.max_at, row.offender, None, True)
            state.open[(a, b)] = episode

    def _observe(self, tick: Tick) -> list[Divergence]:
        price, at = tick.price, tick.event_time
        if not (isinstance(price, float | int) and math.isfinite(price) and price > 0):
            return []  # not a price (the engine counts it); never compared
        state = self._multi.get(tick.symbol)
        if state is None:
            state = self._multi[tick.symbol] = _Symbol(tick.asset_type, at)
        quote = state.quotes.get(tick.source)
        if quote is not None and at < quote[1]:
            return []  # older than this venue's price: its window counts it, the gap does not
        state.quotes[tick.source] = (float(price), at)
        state.now = now = max(state.now, at)
        current = {v: p for v, (p, t) in state.quotes.items() if now - t <= self.stale}
        out = [self._quiet(tick.symbol, state, pair, current) for pair in list(state.open)]
        rows = [row for row in out if row is not None]
        if len(current) < 2:
            return rows
        middle = statistics.median(current.values()) if len(current) > 2 else None
        for a, b in combinations(sorted(current), 2):
            row = self._pair(tick.symbol, state, (a, b), current, middle)
            if row is not None:
                rows.append(row)
        return rows

    def _quiet(
        self, symbol: str, state: _Symbol, pair: tuple[str, str], current: dict[str, float]
    ) -> Divergence | None:
        """End a divergence one of whose venues stopped sending (at the moment it went stale)."""
        if any(v not in state.quotes for v in pair):
            return None  # resumed after a restart: wait for both venues' first prices
        quiet = [v for v in pair if v not in current]
        if not quiet:
            return None
        episode = state.open.pop(pair)
        if not episode.flagged:
            self.blips += 1
            return None
        end = max(max(state.quotes[v][1] for v in quiet) + self.stale, episode.start)
        why = f"{', '.join(quiet)} sent nothing for {self.stale.total_seconds():g} s during it"
        return self._row(symbol, state, pair, episode, end, DATA_FAULT, why)

    def _pair(
        self,
        symbol: str,
        state: _Symbol,
        pair: tuple[str, str],
        current: dict[str, float],
        middle: float | None,
    ) -> Divergence | None:
        a, b = pair
        gap = abs(current[a] - current[b]) / ((current[a] + current[b]) / 2) * 10_000
        episode = state.open.get(pair)
        if gap <= self.bps:
            state.agreed[pair] = {a: current[a], b: current[b]}
            if episode is None:
                return None
            del state.open[pair]
            if not episode.flagged:
                self.blips += 1
                return None
            kind, why = self._verdict(episode, current)
            return self._row(symbol, state, pair, episode, state.now, kind, why)
        grew = episode is None or gap > episode.max_bps
        if grew:
            before = state.agreed.get(pair) if episode is None else episode.before
            offender = _offender(pair, current, middle, before)
            if episode is None:
                episode = _Episode(state.now, gap, state.now, offender, before, False)
                state.open[pair] = episode
            episode.max_bps, episode.max_at, episode.offender = gap, state.now, offender
        assert episode is not None
        if not episode.flagged and state.now - episode.start >= self.seconds:
            episode.flagged = True
        elif not (episode.flagged and grew):
            return None
        return self._row(symbol, state, pair, episode, None, self._open_kind(episode), "")

    def _open_kind(self, episode: _Episode) -> str:
        return DATA_FAULT if episode.max_bps >= self.fault_bps else DISLOCATION

    def _verdict(self, episode: _Episode, current: dict[str, float]) -> tuple[str, str]:
        """The kind of an ended divergence and why."""
        off = episode.offender
        if episode.max_bps >= self.fault_bps:
            return DATA_FAULT, f"{off or 'a venue'} was {episode.max_bps:.0f} bps away"
        if off and episode.before is not None and off in current:
            back = abs(current[off] / episode.before[off] - 1) * 10_000
            if back <= self.bps:
                return DATA_FAULT, f"{off} came back to its own price; no venue followed"
            return DISLOCATION, f"{off} moved first and the other venue followed"
        return DISLOCATION, "the venues parted and met again"

    def _row(
        self,
        symbol: str,
        state: _Symbol,
        pair: tuple[str, str],
        episode: _Episode,
        end: datetime | None,
        kind: str,
        why: str,
    ) -> Divergence:
        span = (end or state.now) - episode.start
        who = f"{episode.offender} looks off" if episode.offender else "no venue stands out"
        summary = (
            f"{pair[0]} vs {pair[1]}: up to {episode.max_bps:.0f} bps for "
            f"{span.total_seconds():.0f} s{'' if end else ' so far'}; {who}"
            + (f"; {why}" if why else "")
        )
        return Divergence(
            symbol=symbol,
            venues=VENUE_SEPARATOR.join(pair),
            started_at=episode.start,
            asset_type=state.asset_type,
            ended_at=end,
            max_bps=episode.max_bps,
            max_at=episode.max_at,
            offender=episode.offender,
            kind=kind,
            summary=summary,
        )


def _offender(
    pair: tuple[str, str],
    current: dict[str, float],
    middle: float | None,
    before: dict[str, float] | None,
) -> str:
    """The venue of `pair` that looks off (see the module docstring), or ''."""
    a, b = pair
    if middle is not None:
        return a if abs(current[a] - middle) >= abs(current[b] - middle) else b
    if before is None:
        return ""
    moved = {v: abs(current[v] / before[v] - 1) for v in pair}
    return a if moved[a] >= moved[b] else b
