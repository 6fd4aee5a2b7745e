"""Alert scoring: is a closed window worth a person's attention, or a fault of the data?

The per-window z-scores of `market_anomalies` (DESIGN.md) stay as defined; this is the layer
above them. Each symbol keeps its own state and judges each closed window, in window order,
on three features (formulas in docs/DETECTION.md):

    move    m = 100 * ln(close / ref)          ref = close of the last window judged good
    volume  v = ln(1 + volume)                 (skipped when the source has no volume)
    range   r = ln(100 * (high - low) / close + R0)

Each feature has an expected value and a scale, both exponentially weighted (EW) over past
windows that were *not* judged anomalous or faulty, so an event never masks itself and a bad
print never poisons what follows:

    move:   expected 0;        scale s_m = 1.2533 * EW|m| (the mean absolute deviation of a
                               normal is 0.798 sigma), times a slot factor for stocks
    volume, range: expected = level + shape[slot]; scale = 1.2533 * EW|residual|

For stocks, `shape[slot]` is the usual offset of that time of day (`tickwatch.markets` slots,
from the exchange calendar), learned across sessions (EW over sessions, weight
`session_alpha`) and started from a generic U-shaped prior, so the opening and closing auctions
are not anomalies every day but an auction far larger than usual still is. The move scale of
a slot is learned the same way (the first window of a session carries the overnight gap).
Crypto (and NAB series) have no session: shape is 0 and the level follows recent windows.

z = residual / max(scale, floor), bounded to +/- `z_cap`: a near-constant series cannot give a
z of 500,000. Updates are winsorised at +/- `clip` scales, so a new regime is learned gradually
instead of at once.

A window is *alerting* when one of these holds (T = `z_open`):
- price: |z_m| > T, |m| >= `min_move_pct`, and volume confirms (z_v > `confirm_z`) or the move
  is large on its own (|z_m| > 2T);
- volume: z_v > T, in the regular session for stocks (extended-hours volume is too erratic);
- range: z_r > T, and the spread (volatility, % of close) is at least `range_min_move` move
  scales (a burst must matter next to the usual move);
- sustained: a two-sided CUSUM of the move or volume z (clipped at `clip`) exceeds `cusum_h`.
Rare means beyond `tail_factor` x the recent tail and, for 24h series, not a daily schedule:
as large (/ `recur_factor`) within `recur_minutes` of this time on `recur_days` of the last
`recur_lookback` days. 24h series learn an hour-of-day profile (`hourly_profile`).

Data faults (kind `data_fault`; excluded from every baseline, never a market alert):
- `bad_print`: a price alert without volume confirmation whose next window returns to within
  `revert_fraction` of the move: judged one window later;
- `split_like`: a stock move of 20% or more whose price ratio is within 1% of a split ratio;
  the reference price is rebased (coins do not split: a halving of a coin is a market event);
- `zero_volume`: a stock window in the regular session with ticks and a volume of 0;
- `frozen_price`: `frozen_windows` consecutive regular-session stock windows with one price.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from tickwatch.markets import CLOSE_SLOTS, SessionCalendar
from tickwatch.model import AssetType

MAD_TO_SIGMA = 1.2533  # E|X| = sigma * sqrt(2/pi) for a normal X
RANGE_FLOOR_PCT = 0.01  # R0: a window with one price has range 0; ln needs a floor
SPLIT_RATIOS = (2.0, 3.0, 4.0, 5.0, 10.0, 1.5, 20.0)
SPLIT_MIN_MOVE = 100 * math.log(1.2)  # a move this large (in ln %) may be a split
SPLIT_MAX_MOVE = 100 * math.log(25.0)  # beyond every split ratio (and exp cannot overflow)
MOVE = "price_spike"
VOLUME = "volume_surge"
RANGE = "volatility_burst"


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Alert scoring parameters (settings `ALERT_*`, docs/DETECTION.md)."""

    window: timedelta = timedelta(minutes=5)
    z_open: float = 4.0
    z_continue: float = 3.0
    z_cap: float = 50.0
    confirm_z: float = 1.0
    min_move_pct: float = 0.05
    memory_windows: int = 200
    level_windows: int = 78
    session_alpha: float = 0.3
    warmup_windows: int = 20
    clip: float = 4.0
    revert_fraction: float = 0.3
    frozen_windows: int = 3
    move_floor_pct: float = 0.001
    log_floor: float = 0.02
    tail_windows: int = 300
    tail_quantile: float = 0.99
    tail_factor: float = 1.5
    tail_min: int = 100
    range_min_move: float = 0.5  # a volatility burst's spread, in move scales
    hourly_profile: bool = True
    size_factor: float = 1.5
    recur_days: int = 2  # 0: off
    recur_lookback: int = 3
    recur_minutes: int = 15
    recur_factor: float = 1.5
    cusum_k: float = 2.0
    cusum_h: float = 12.0  # 0: off


@dataclass(slots=True)  # not frozen: built for every window, frozen init is slower
class Bar:
    """The part of a closed window that alert scoring reads."""

    symbol: str
    asset_type: AssetType
    window_start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    tick_count: int
    volatility: float | None = None


@dataclass(slots=True)  # not frozen: built for every window, frozen init is slower
class Verdict:
    """One window judged: its scores, and whether it alerts (market) or is a data fault."""

    bar: Bar
    z: dict[str, float]  # feature -> bounded z (features that could be scored)
    move_pct: float | None  # close-to-close move against the last good close, percent
    volume_ratio: float | None  # volume / expected volume
    alerting: bool  # opens or extends an episode on its own
    continuing: bool  # extends an open episode (some |z| > z_continue)
    fault: str | None  # data fault reason, or None
    regular: bool  # stocks: in the regular session; crypto: always True
    fired: tuple[str, ...] = ()  # the features that made it alert
    move_minutes: float | None = None  # the span of the move: since the reference window

    @property
    def peak_abs_z(self) -> float:
        values = [abs(self.z[f]) for f in self.fired] or [abs(v) for v in self.z.values()]
        return max(values, default=0.0)


@dataclass
class _Feature:
    """EW level (for volume/range), EW mean absolute residual, and per-slot shape."""

    level: float | None = None
    mad: float | None = None
    shape: dict[int, float] = field(default_factory=dict)
    recent: list[float] | None = None  # |residual| of the last `tail_windows` windows, a ring
    seen: int = 0

    def remember(self, residual: float, size: int) -> None:
        # a list, not an array: one item set per window is ~10x cheaper on a list
        if self.recent is None:
            self.recent = [0.0] * size
        self.recent[self.seen % size] = abs(residual)
        self.seen += 1

    def rare(self, residual: float, config: AlertConfig) -> bool:
        """Beyond `tail_factor` times this series' own recent tail (the `tail_quantile` of
        its recent |residual|, alerting windows included): in a series where such moves
        happen every day, they are not news."""
        if self.recent is None or self.seen < config.tail_min:
            return True
        tail = _quantile(self.recent[: min(self.seen, len(self.recent))], config.tail_quantile)
        return abs(residual) > config.tail_factor * tail


def _quantile(values: list[float], q: float) -> float:
    """`np.quantile(values, q)` (method "linear"), bit for bit, in about a tenth of its time
    (its generic setup around the selection costs more than the selection). Same steps as
    numpy: index h = (n - 1) q, the two order statistics around it by partial selection, and
    numpy's two-sided lerp; a NaN anywhere gives NaN."""
    n = len(values)
    h = (n - 1) * q
    below = math.floor(h)
    if h >= n - 1:  # numpy takes the largest value
        below = above = n - 1
    else:
        above = below + 1
    ordered = np.partition(np.array(values), (below, above, n - 1))
    if math.isnan(ordered[n - 1]):  # NaN sorts last
        return math.nan
    a, b, t = float(ordered[below]), float(ordered[above]), h - below
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


# where a window falls: (slot, regular, prior move factor, prior volume shape, prior range
# shape, ordinal: windows since the epoch); 24h series slot by hour, without priors. A plain
# tuple: a NamedTuple costs ~1 us to build, once per window for a lone symbol (NAB)
_Place = tuple[int, bool, float, float, float, int]


@functools.lru_cache(maxsize=8192)  # every stock asks for the same few window starts
def _session_place(calendar: SessionCalendar, start: datetime, minutes: int, step: float) -> _Place:
    index = int(start.timestamp() // step)
    slot = (position := calendar.position(start, minutes)).slot
    return (
        slot,
        position.regular,
        _prior_move_factor(calendar, slot),
        _prior_volume_shape(calendar, slot),
        _prior_range_shape(calendar, slot),
        index,
    )


class SymbolScorer:
    """The alert state of one symbol; `judge` takes its windows in order."""

    def __init__(self, config: AlertConfig, calendar: SessionCalendar | None) -> None:
        self.config = config
        self.calendar = calendar
        self.ref: float | None = None
        self.ref_at: datetime | None = None  # the window whose close `ref` is
        self.last: datetime | None = None  # newest window judged (the engine skips older)
        self.count = 0
        self.move = _Feature()
        self.volume = _Feature()
        self.range = _Feature()
        self.frozen_run = 0
        self.spacing: float | None = None  # 24h series: EW of windows between judged windows
        # a suspected bad print, with the reference (close, window) it is judged against and
        # its residuals (move, volume, range)
        self.pending: tuple[Verdict, float, datetime | None, _Residuals] | None = None
        # 24h series: window index -> |residual| (move, volume, range; 0.0 when unscored)
        self.daily: dict[int, tuple[float, float, float]] = {}
        self.cusum: dict[str, list[float]] = {MOVE: [0.0, 0.0], VOLUME: [0.0, 0.0]}
        # a slot is seen once a session (stocks) or once per window of its hour (hourly)
        per_slot = 1 if calendar is not None else max(1, int(3600 // config.window.seconds))
        self.shape_rate = config.session_alpha / per_slot
        self.hourly = config.hourly_profile
        self.remembers_daily = calendar is None and config.recur_days > 0
        self.learns_shape = calendar is not None or config.hourly_profile
        # per-window constants, computed once
        self.minutes = int(config.window.seconds // 60)
        self.a_mem = 2 / (config.memory_windows + 1)
        self.a_lvl = 2 / (config.level_windows + 1)
        step = int(config.window.total_seconds())
        self.step = config.window.total_seconds()
        self.day, self.tol = 86400 // step, config.recur_minutes * 60 // step
        # windows older than this (from the newest remembered) can no longer recur
        self.daily_horizon = (config.recur_lookback * 86400 + config.recur_minutes * 60) // step + 1

    def judge(self, bar: Bar) -> list[Verdict]:
        """The verdicts this window completes: usually its own; a window held as a suspected
        bad print comes out one window later, before the window that settled it."""
        if self.pending is None:
            verdict = self._score(bar)
            return [] if verdict is None else [verdict]
        out: list[Verdict] = []
        held, ref_before, ref_at_before, held_residuals = self.pending
        self.pending = None
        m_held = 100 * _log_ratio(held.bar.close, ref_before)
        m_back = 100 * _log_ratio(bar.close, ref_before)
        if abs(m_back) <= self.config.revert_fraction * abs(m_held):
            out.append(_as_fault(held, "bad_print"))
            self.ref, self.ref_at = ref_before, ref_at_before  # the print never happened
        else:
            out.append(held)
            place = self._place(held.bar)
            if self.remembers_daily:
                # a real move joins the daily memory (a schedule), not the tail: a tail that
                # holds every unconfirmed move hides a cluster of real moves on one day
                self._remember_daily(held_residuals, place[5])
            span = None if held.move_minutes is None else held.move_minutes * 60 / self.step
            self._learn(held.bar, held.move_pct, span, place, *_logs(held.bar))
            self.ref, self.ref_at = held.bar.close, held.bar.window_start
        verdict = self._score(bar)
        if verdict is not None:
            out.append(verdict)
        return out

    def flush(self) -> list[Verdict]:
        """A held window with nothing after it (end of input) is judged as it scored."""
        if self.pending is None:
            return []
        held = self.pending[0]
        self.pending = None
        return [held]

    def _place(self, bar: Bar) -> _Place:
        start = bar.window_start
        if self.calendar is not None:
            return _session_place(self.calendar, start, self.minutes, self.step)
        index = int(start.timestamp() // self.step)
        return (start.hour if self.hourly else 0), True, 1.0, 0.0, 0.0, index

    def _score(self, bar: Bar) -> Verdict | None:
        # written out (no helper calls for scales and expectations): it runs once per window
        c = self.config
        place = self._place(bar)
        slot, regular, move_factor, volume_shape, range_shape, index = place
        cap = c.z_cap
        z: dict[str, float] = {}
        # residuals in the feature's own units (%, ln), slot-adjusted; None when unscored
        r_move = r_volume = r_range = None
        move_pct = None
        ref = self.ref
        close = bar.close
        # windows since the reference window (1 when no window is missing)
        span = None if self.ref_at is None else (bar.window_start - self.ref_at) / c.window
        if ref is not None and ref > 0 and close > 0:
            move_pct = 100 * _log_ratio(close, ref)
            mad = self.move.mad
            if mad is not None:
                scale = MAD_TO_SIGMA * mad
                scale = scale if scale > c.move_floor_pct else c.move_floor_pct
                r_move = move_pct / self.move.shape.get(slot, move_factor)
                spacing = self.spacing
                if span is not None and spacing is not None and span > spacing:
                    # a move across a gap in the data: a random walk's spread grows with the
                    # square root of time (24h series; a stock's gaps are its session slots)
                    r_move /= math.sqrt(span / spacing)
                z[MOVE] = _bound(r_move / scale, cap)
        volume_ratio = None
        volume = self.volume
        log_volume, log_range = _logs(bar)
        if log_volume is not None and volume.level is not None and volume.mad is not None:
            expected = volume.level + volume.shape.get(slot, volume_shape)
            scale = MAD_TO_SIGMA * volume.mad
            scale = scale if scale > c.log_floor else c.log_floor
            r_volume = log_volume - expected
            z[VOLUME] = _bound(r_volume / scale, cap)
            volume_ratio = math.exp(log_volume - expected)
        spread = self.range
        if spread.level is not None and spread.mad is not None:
            scale = MAD_TO_SIGMA * spread.mad
            scale = scale if scale > c.log_floor else c.log_floor
            r_range = log_range - spread.level - spread.shape.get(slot, range_shape)
            z[RANGE] = _bound(r_range / scale, cap)
        residuals = (r_move, r_volume, r_range)
        warm = self.count >= c.warmup_windows
        # 24h series (crypto) neither split nor have a session to be frozen in
        fault = None if self.calendar is None else self._fault(bar, regular, move_pct)
        fired: list[str] = []
        zv = z.get(VOLUME)
        confirmed = zv is not None and zv > c.confirm_z
        if warm and fault is None:
            zm = z.get(MOVE, 0.0)
            if (
                abs(zm) > c.z_open
                and self._novel(self.move, 0, residuals, index)
                and move_pct is not None
                and abs(move_pct) >= c.min_move_pct
                and (confirmed or abs(zm) > c.size_factor * c.z_open)
            ):
                fired.append(MOVE)
            if (
                zv is not None
                and zv > c.z_open
                and regular
                and self._novel(self.volume, 1, residuals, index)
            ):
                fired.append(VOLUME)
            if (
                z.get(RANGE, 0.0) > c.z_open
                and self._novel(self.range, 2, residuals, index)
                and self._material_range(bar)
            ):
                fired.append(RANGE)
            if c.cusum_h > 0:
                if r_move is not None:
                    self._sustained(MOVE, z[MOVE], fired)
                if zv is not None and regular:
                    self._sustained(VOLUME, zv, fired)
        continuing = False
        if warm and fault is None:
            for key, value in z.items():
                if (value > c.z_continue or value < -c.z_continue) and (key != VOLUME or regular):
                    continuing = True
                    break
        verdict = Verdict(
            bar=bar,
            z=z,
            move_pct=move_pct,
            volume_ratio=volume_ratio,
            alerting=bool(fired),
            continuing=continuing,
            fault=fault,
            regular=regular,
            fired=tuple(fired),
            move_minutes=None if span is None else span * self.step / 60,
        )
        if fired and MOVE in fired and not confirmed and self.ref is not None:
            # a bad print, or a real move? the next window says
            self.pending = (verdict, self.ref, self.ref_at, residuals)
            self.ref, self.ref_at = bar.close, bar.window_start
            return None
        if fault is None:
            self._remember(residuals, index)
            self._learn(bar, move_pct, span, place, log_volume, log_range)
            self.ref, self.ref_at = bar.close, bar.window_start
        elif fault == "split_like":
            self.ref, self.ref_at = bar.close, bar.window_start
        return verdict

    def _material_range(self, bar: Bar) -> bool:
        """A burst must matter next to the usual move: its spread (the window's volatility, %
        of close) at least `range_min_move` x the move scale. A series with one price per
        window has a spread of 0 until a window gets two prices, which its own history alone
        would score at the z cap."""
        mad = self.move.mad
        return mad is None or _spread_pct(bar) >= self.config.range_min_move * MAD_TO_SIGMA * mad

    def _remember(self, residuals: _Residuals, index: int) -> None:
        """A window that was no fault joins the recent tail and (24h series) the daily memory."""
        size = self.config.tail_windows
        move, volume, spread = residuals
        if move is not None:
            self.move.remember(move, size)
        if volume is not None:
            self.volume.remember(volume, size)
        if spread is not None:
            self.range.remember(spread, size)
        if self.remembers_daily:
            self._remember_daily(residuals, index)

    def _sustained(self, key: str, value: float, fired: list[str]) -> None:
        """Two-sided CUSUM (k = `cusum_k`) of the move or volume z: a persistent shift."""
        c = self.config
        value, sums, k = _clip(value, c.clip), self.cusum[key], c.cusum_k
        up, down = sums[0] + value - k, sums[1] - value - k
        sums[0] = up if up > 0.0 else 0.0
        sums[1] = down if down > 0.0 else 0.0
        if sums[0] > c.cusum_h or sums[1] > c.cusum_h or key in fired:
            if key not in fired:
                fired.append(key)
            sums[0] = sums[1] = 0.0

    def _remember_daily(self, residuals: _Residuals, index: int) -> None:
        daily = self.daily
        move, volume, spread = residuals
        daily[index] = (
            0.0 if move is None else abs(move),
            0.0 if volume is None else abs(volume),
            0.0 if spread is None else abs(spread),
        )
        if len(daily) > 2 * self.daily_horizon:
            # pruned in bulk: `_novel` never looks below the horizon, so what is kept past it
            # changes nothing (dropping one a window scans a dict's deleted slots each time)
            horizon = index - self.daily_horizon
            self.daily = {i: values for i, values in daily.items() if i >= horizon}

    def _novel(self, feature: _Feature, which: int, residuals: _Residuals, index: int) -> bool:
        """Rare for this series, and (24h series) not a daily schedule: a nightly job, a
        funding or settlement time (stocks have session slots instead)."""
        c = self.config
        residual = residuals[which]
        assert residual is not None  # only scored features are judged
        # both tests are pure: the cheap schedule test first, the tail quantile only if needed
        if self.remembers_daily and self._scheduled(which, abs(residual) / c.recur_factor, index):
            return False
        return feature.rare(residual, c)

    def _scheduled(self, which: int, size: float, index: int) -> bool:
        """As large (`size`) within `recur_minutes` of this time on `recur_days` of the last
        `recur_lookback` days."""
        daily, nothing, days = self.daily, (0.0, 0.0, 0.0), 0
        for back in range(1, self.config.recur_lookback + 1):
            centre = index - back * self.day
            for near in range(centre - self.tol, centre + self.tol + 1):
                if daily.get(near, nothing)[which] >= size:
                    days += 1
                    break
        return days >= self.config.recur_days

    def _fault(self, bar: Bar, regular: bool, move_pct: float | None) -> str | None:
        stock_open = self.calendar is not None and regular
        if move_pct is not None and SPLIT_MIN_MOVE <= abs(move_pct) <= SPLIT_MAX_MOVE:
            ratio = math.exp(abs(move_pct) / 100)
            if any(abs(ratio / split - 1) < 0.01 for split in SPLIT_RATIOS):
                return "split_like"
        if stock_open and bar.volume is not None and bar.volume == 0 and bar.tick_count > 0:
            return "zero_volume"
        flat = bar.high == bar.low and self.ref is not None and bar.close == self.ref
        self.frozen_run = self.frozen_run + 1 if (flat and stock_open) else 0
        if self.frozen_run >= self.config.frozen_windows:
            return "frozen_price"
        return None

    def _learn(
        self,
        bar: Bar,
        move_pct: float | None,
        span: float | None,
        place: _Place,
        log_volume: float | None,
        log_range: float,
    ) -> None:
        """Fold a good window into the baselines (alerting windows only winsorised)."""
        c = self.config
        slot, _, move_factor, volume_shape, range_shape, _ = place
        self.count += 1
        a_mem, a_lvl = _rate(self.a_mem, self.count), _rate(self.a_lvl, self.count)
        if span is not None and self.calendar is None:
            self.spacing = _ew(self.spacing, span, a_mem)
        if move_pct is not None:
            move, m = self.move, move_pct
            factor = move.shape.get(slot, move_factor)
            if move.mad is not None:
                scale = _at_least(MAD_TO_SIGMA * move.mad, c.move_floor_pct)
                m = _clip(m, c.clip * scale * factor)
                if self.learns_shape:
                    ratio = _at_most(abs(m) / (scale * MAD_TO_SIGMA), c.clip * factor)
                    move.shape[slot] = factor + self.shape_rate * (ratio - factor)
                m = m / factor
            move.mad = _ew(move.mad, abs(m), a_mem)
        if log_volume is not None:
            self._learn_level(self.volume, log_volume, slot, volume_shape, a_mem, a_lvl)
        self._learn_level(self.range, log_range, slot, range_shape, a_mem, a_lvl)

    def _learn_level(
        self, feature: _Feature, y: float, slot: int, prior: float, a_mem: float, a_lvl: float
    ) -> None:
        shape = feature.shape.get(slot, prior)
        if feature.level is None:
            feature.level = y - shape
            return
        residual = y - feature.level - shape
        if feature.mad is not None:
            scale = _at_least(MAD_TO_SIGMA * feature.mad, self.config.log_floor)
            residual = _clip(residual, self.config.clip * scale)
        feature.mad = _ew(feature.mad, abs(residual), a_mem)
        feature.level += a_lvl * residual
        if self.learns_shape:
            feature.shape[slot] = shape + self.shape_rate * residual


_Residuals = tuple[float | None, float | None, float | None]  # move, volume, range


def _ew(previous: float | None, value: float, alpha: float) -> float:
    return value if previous is None else previous + alpha * (value - previous)


def _rate(alpha: float, count: int) -> float:
    """The EW weight, or 1/n while fewer than 1/alpha values were seen (a plain running mean
    first, so the first value does not linger in the baseline)."""
    inverse = 1.0 / count if count > 1 else 1.0
    return inverse if inverse > alpha else alpha


# conditionals, not max/min: these run several times per window (each is exactly the
# builtin: max(value, floor), min(value, cap), NaN included)
def _log_ratio(price: float, ref: float) -> float:
    """ln(price / ref) for positive prices; the quotient of two valid prices can underflow to 0
    (1e-320 / 1e11) or overflow, so such extremes take the difference of logs instead."""
    ratio = price / ref
    if 0.0 < ratio < math.inf:
        return math.log(ratio)
    return math.log(price) - math.log(ref)


def _clip(value: float, bound: float) -> float:
    return bound if value > bound else -bound if value < -bound else value


def _at_least(value: float, floor: float) -> float:
    return floor if floor > value else value


def _at_most(value: float, cap: float) -> float:
    return cap if cap < value else value


_bound = _clip


def _logs(bar: Bar) -> tuple[float | None, float]:
    """ln(1 + volume) (None without a usable volume) and the log range of a window."""
    volume = bar.volume
    log_volume = math.log1p(volume) if volume is not None and volume >= 0 else None
    return log_volume, math.log(_at_least(_spread_pct(bar), 0.0) + RANGE_FLOOR_PCT)


def _spread_pct(bar: Bar) -> float:
    """The window's volatility as % of its close (0 with one price, or no usable close)."""
    return 100 * (bar.volatility or 0.0) / bar.close if bar.close > 0 else 0.0


@functools.cache
def _prior_volume_shape(calendar: SessionCalendar | None, slot: int) -> float:
    """ln of the usual volume multiple of a slot before a symbol has taught its own: the
    U shape of US equities (about 5x midday in the opening window, 6x in the closing one)."""
    if calendar is None:
        return 0.0
    if slot < CLOSE_SLOTS:
        return math.log({0: 5.0, 1: 2.5, 2: 2.0, 3: 1.7}.get(slot, 1.3 if slot < 12 else 1.0))
    if slot < CLOSE_SLOTS + 6:
        return math.log({0: 6.0, 1: 2.5, 2: 2.0}.get(slot - CLOSE_SLOTS, 1.5))
    return math.log(0.1)  # extended hours and closed days: thin


@functools.cache
def _prior_range_shape(calendar: SessionCalendar | None, slot: int) -> float:
    if calendar is None:
        return 0.0
    if slot < CLOSE_SLOTS:
        return math.log({0: 2.5, 1: 1.6, 2: 1.4}.get(slot, 1.0))
    if slot < CLOSE_SLOTS + 6:
        return math.log(1.2)
    return 0.0


@functools.cache
def _prior_move_factor(calendar: SessionCalendar | None, slot: int) -> float:
    """The first window of a session carries the overnight gap (about 3x a midday move);
    the closing auction's window moves about 1.5x; extended hours are erratic (3x)."""
    if calendar is None:
        return 1.0
    if slot == 0 or slot >= CLOSE_SLOTS + 6:
        return 3.0
    return 1.5 if slot == CLOSE_SLOTS else 1.0


def _as_fault(verdict: Verdict, reason: str) -> Verdict:
    return Verdict(
        bar=verdict.bar,
        z=verdict.z,
        move_pct=verdict.move_pct,
        volume_ratio=verdict.volume_ratio,
        alerting=False,
        continuing=False,
        fault=reason,
        regular=verdict.regular,
        fired=verdict.fired,
        move_minutes=verdict.move_minutes,
    )
