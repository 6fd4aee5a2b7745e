"""Alert episodes and market-wide events, from judged windows, in market time only.

- **Episode**: windows of one symbol that alert (or keep a feature beyond `z_continue` while an
  episode is open) form one alert as long as each comes within `gap_windows` windows of the
  previous one. The alert opens at its first window and closes when a window of the symbol
  arrives past that gap: `closed_at = last_window_start + (gap_windows + 1) * window`. Data
  faults form episodes of their own (kind `data_fault`), never market alerts.
- **Market event**: when, in one window, at least `market_min_symbols` and at least
  `market_fraction` of the active symbols of an asset class have a market alert, one
  `market_events` row links them (each keeps its alert). A window is decided once every symbol
  active in the last hour of that class has closed it, or the class is two windows past it
  (checked at the end of each batch of windows).
- **Notices** (what a notifier may send): an alert's opening, held until its window is decided
  so that a market-wide move is one notice, not one per symbol; one escalation per alert when
  its severity rises; one notice per market event. Faults are never notified.

The alert id is derived from the symbol, asset class, kind and opening window, so replaying the
same input gives the same ids (idempotent upserts).
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tickwatch.engine.alert_score import (
    MOVE,
    RANGE,
    VOLUME,
    AlertConfig,
    Bar,
    SymbolScorer,
    Verdict,
)
from tickwatch.markets import calendar_for
from tickwatch.model import AssetType, Severity, severity_of

MARKET = "market"
DATA_FAULT = "data_fault"
NEW_YORK = ZoneInfo("America/New_York")
_RANK = {None: 0, Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}


@dataclass(frozen=True, slots=True)
class EpisodeConfig:
    gap_windows: int = 12
    market_min_symbols: int = 3
    market_fraction: float = 0.5
    severity: tuple[float, float, float] = (3.0, 4.0, 5.0)  # low, medium, high bands


@dataclass
class Alert:
    """One episode: a row of `alerts` (see `row`)."""

    alert_id: str
    symbol: str
    asset_type: AssetType
    kind: str
    opened_at: datetime
    last_window_start: datetime
    closed_at: datetime | None
    peak_abs_z: float
    peak_severity: Severity | None
    features: set[str]
    direction: dict[str, str]
    window_count: int
    market_event_id: str | None
    summary: str
    opening: Verdict
    peak: Verdict

    def row(self) -> dict[str, object]:
        return {
            "alert_id": self.alert_id,
            "symbol": self.symbol,
            "asset_type": self.asset_type.value,
            "kind": self.kind,
            "opened_at": self.opened_at,
            "last_window_start": self.last_window_start,
            "closed_at": self.closed_at,
            "peak_severity": self.peak_severity.value if self.peak_severity else None,
            "peak_abs_z": self.peak_abs_z,
            "features": ",".join(sorted(self.features)),
            "direction": ",".join(f"{k}:{v}" for k, v in sorted(self.direction.items())),
            "window_count": self.window_count,
            "market_event_id": self.market_event_id,
            "summary": self.summary,
        }


@dataclass
class MarketEvent:
    """Many symbols of one asset class alerting together: a row of `market_events`."""

    event_id: str
    asset_type: AssetType
    window_start: datetime
    last_window_start: datetime
    symbols: int
    active_symbols: int
    direction: str
    median_move_pct: float | None
    summary: str
    alert_ids: list[str]

    def row(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "asset_type": self.asset_type.value,
            "window_start": self.window_start,
            "last_window_start": self.last_window_start,
            "symbols": self.symbols,
            "active_symbols": self.active_symbols,
            "direction": self.direction,
            "median_move_pct": self.median_move_pct,
            "summary": self.summary,
        }


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth telling a person: `opened`, `escalated` or `market_event`."""

    kind: str
    alert: dict[str, object] | None = None
    event: dict[str, object] | None = None
    text: str = ""


@dataclass
class AlertOutput:
    alerts: dict[str, Alert] = field(default_factory=dict)  # changed alerts, by id
    events: dict[str, MarketEvent] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)

    def merge(self, other: AlertOutput) -> None:
        self.alerts.update(other.alerts)
        self.events.update(other.events)
        self.notices.extend(other.notices)
        self.verdicts.extend(other.verdicts)


@dataclass
class _ClassState:
    latest: dict[str, datetime] = field(default_factory=dict)
    pending: dict[datetime, list[tuple[Alert, Verdict]]] = field(default_factory=dict)
    held: dict[datetime, list[Alert]] = field(default_factory=dict)  # opening notices
    trading: dict[datetime, int] = field(default_factory=dict)  # symbols with a window at t
    last_event: MarketEvent | None = None


class AlertEngine:
    """Judges closed windows (per symbol, in order) and keeps episodes and market events."""

    def __init__(self, config: AlertConfig, episodes: EpisodeConfig) -> None:
        self.config = config
        self.episodes = episodes
        self.scorers: dict[tuple[AssetType, str], SymbolScorer] = {}
        # open episodes by symbol, then kind (most windows ask, and most symbols have none)
        self.open: dict[tuple[AssetType, str], dict[str, Alert]] = {}
        self.classes: dict[AssetType, _ClassState] = {}
        self.notified: set[str] = set()
        self.escalated: set[str] = set()
        self.opened: Counter[str] = Counter()  # episodes opened, by kind
        self.gap = config.window * (episodes.gap_windows + 1)  # an episode ends after this

    def process(self, bars: Iterable[Bar]) -> AlertOutput:
        out = AlertOutput()
        for bar in bars:
            key = (bar.asset_type, bar.symbol)
            scorer = self.scorers.get(key)
            if scorer is None:
                scorer = SymbolScorer(self.config, calendar_for(bar.asset_type))
                self.scorers[key] = scorer
            elif scorer.last is not None and bar.window_start <= scorer.last:
                continue  # judged already (a re-delivered or restored window)
            scorer.last = bar.window_start
            for verdict in scorer.judge(bar):
                self._episode(verdict, out)
            state = self.classes.get(bar.asset_type)
            if state is None:
                state = self.classes[bar.asset_type] = _ClassState()
            state.latest[bar.symbol] = bar.window_start
            state.trading[bar.window_start] = state.trading.get(bar.window_start, 0) + 1
        for asset_type, state in self.classes.items():
            if state.pending or state.held:
                self._progress(asset_type, state, out)
            if len(state.trading) > 2_000:  # only recent windows can still be decided
                horizon = max(state.trading) - 24 * self.config.window
                state.trading = {t: n for t, n in state.trading.items() if t >= horizon}
        return out

    def flush(self) -> AlertOutput:
        """End of input: judge held windows and decide every pending window (open episodes
        stay open: more data may extend them)."""
        out = AlertOutput()
        for scorer in self.scorers.values():
            for verdict in scorer.flush():
                self._episode(verdict, out)
        for asset_type, state in self.classes.items():
            for moment in sorted(set(state.pending) | set(state.held)):
                self._decide(asset_type, state, moment, out)
        return out

    # episodes

    def _episode(self, v: Verdict, out: AlertOutput) -> None:
        out.verdicts.append(v)
        bar, gap = v.bar, self.gap
        mine = self.open.get((bar.asset_type, bar.symbol))
        if mine:
            for kind in (MARKET, DATA_FAULT):
                alert = mine.get(kind)
                if alert is not None and bar.window_start - alert.last_window_start >= gap:
                    alert.closed_at = alert.last_window_start + gap
                    del mine[kind]
                    out.alerts[alert.alert_id] = alert
        kind = DATA_FAULT if v.fault else MARKET
        alert = mine.get(kind) if mine else None
        if v.fault is None and not v.alerting and not (v.continuing and alert is not None):
            return
        if alert is None:
            alert = self._open(v, kind)
            self.opened[kind] += 1
            if mine is None:
                mine = self.open[(bar.asset_type, bar.symbol)] = {}
            mine[kind] = alert
            if kind == MARKET:
                state = self.classes.setdefault(bar.asset_type, _ClassState())
                state.held.setdefault(bar.window_start, []).append(alert)
        else:
            self._extend(alert, v)
        if kind == MARKET:
            state = self.classes.setdefault(bar.asset_type, _ClassState())
            state.pending.setdefault(bar.window_start, []).append((alert, v))
            if alert.alert_id in self.notified and alert.alert_id not in self.escalated:
                self._maybe_escalate(alert, out)
        out.alerts[alert.alert_id] = alert

    def _open(self, v: Verdict, kind: str) -> Alert:
        bar = v.bar
        ident = f"{bar.asset_type.value}|{bar.symbol}|{kind}|{bar.window_start.isoformat()}"
        peak = v.peak_abs_z
        return Alert(
            alert_id=hashlib.sha1(ident.encode()).hexdigest()[:16],
            symbol=bar.symbol,
            asset_type=bar.asset_type,
            kind=kind,
            opened_at=bar.window_start,
            last_window_start=bar.window_start,
            closed_at=None,
            peak_abs_z=peak,
            peak_severity=self._severity(peak),
            features=set(v.fired) if kind == MARKET else {v.fault or "data_fault"},
            direction=_directions(v),
            window_count=1,
            market_event_id=None,
            summary=summary(v, kind, self.config.window),
            opening=v,
            peak=v,
        )

    def _extend(self, alert: Alert, v: Verdict) -> None:
        alert.last_window_start = v.bar.window_start
        alert.window_count += 1
        if alert.kind == MARKET:
            alert.features |= set(v.fired)
            for feature, way in _directions(v).items():
                alert.direction.setdefault(feature, way)
        elif v.fault:
            alert.features.add(v.fault)
        if v.peak_abs_z > alert.peak_abs_z:
            alert.peak_abs_z = v.peak_abs_z
            alert.peak_severity = self._severity(v.peak_abs_z)
            alert.peak = v
            alert.summary = summary(v, alert.kind, self.config.window, alert)

    def _severity(self, z: float) -> Severity | None:
        low, medium, high = self.episodes.severity
        return severity_of(z, low, medium, high)

    def _maybe_escalate(self, alert: Alert, out: AlertOutput) -> None:
        opened = severity_of(alert.opening.peak_abs_z, *self.episodes.severity)
        if _RANK[alert.peak_severity] > _RANK[opened]:
            self.escalated.add(alert.alert_id)
            out.notices.append(Notice("escalated", alert.row(), text=f"escalated: {alert.summary}"))

    # market-wide events

    def _progress(self, asset_type: AssetType, state: _ClassState, out: AlertOutput) -> None:
        """Decide the windows every active symbol of the class has closed (once per batch)."""
        window = self.config.window
        newest = max(state.latest.values())
        slowest = min(t for t in state.latest.values() if newest - t <= 12 * window)
        for moment in sorted(set(state.pending) | set(state.held)):
            if moment <= slowest or newest - moment >= 2 * window:
                self._decide(asset_type, state, moment, out)

    def _decide(
        self, asset_type: AssetType, state: _ClassState, moment: datetime, out: AlertOutput
    ) -> None:
        members = state.pending.pop(moment, [])
        openings = state.held.pop(moment, [])
        active = state.trading.get(moment, 0)
        horizon = moment - 24 * self.config.window
        for old in [t for t in state.trading if t < horizon]:
            del state.trading[old]
        symbols = {alert.symbol for alert, _ in members}
        need = max(self.episodes.market_min_symbols, self.episodes.market_fraction * active)
        event: MarketEvent | None = None
        if len(symbols) >= need:
            event = self._event(asset_type, state, moment, members, active, out)
            out.events[event.event_id] = event
            for alert, _ in members:
                if alert.market_event_id is None:
                    alert.market_event_id = event.event_id
                    out.alerts[alert.alert_id] = alert
        for alert in openings:
            self.notified.add(alert.alert_id)
            if alert.market_event_id is None:
                out.notices.append(Notice("opened", alert.row(), text=alert.summary))

    def _event(
        self,
        asset_type: AssetType,
        state: _ClassState,
        moment: datetime,
        members: list[tuple[Alert, Verdict]],
        active: int,
        out: AlertOutput,
    ) -> MarketEvent:
        moves = [v.move_pct for _, v in members if v.move_pct is not None]
        ups = sum(1 for m in moves if m > 0)
        direction = "up" if ups * 2 > len(moves) else "down" if moves else "mixed"
        median = statistics.median(moves) if moves else None
        symbols = sorted({alert.symbol for alert, _ in members})
        previous = state.last_event
        if previous is not None and moment - previous.last_window_start <= self.config.window * (
            self.episodes.gap_windows + 1
        ):
            event = replace(
                previous,
                last_window_start=max(moment, previous.last_window_start),
                symbols=max(previous.symbols, len(symbols)),
                alert_ids=sorted({*previous.alert_ids, *(a.alert_id for a, _ in members)}),
            )
        else:
            ident = f"{asset_type.value}|{moment.isoformat()}"
            event = MarketEvent(
                event_id=hashlib.sha1(ident.encode()).hexdigest()[:16],
                asset_type=asset_type,
                window_start=moment,
                last_window_start=moment,
                symbols=len(symbols),
                active_symbols=active,
                direction=direction,
                median_move_pct=median,
                summary="",
                alert_ids=sorted(a.alert_id for a, _ in members),
            )
        median_text = (
            "" if event.median_move_pct is None else f", median {event.median_move_pct:+.1f}%"
        )
        event.summary = (
            f"market-wide: {event.symbols} of {event.active_symbols} {asset_type.value} "
            f"{event.direction}{median_text}, {_clock(event.window_start, asset_type)}"
        )
        if previous is None or previous.event_id != event.event_id:
            out.notices.append(Notice("market_event", event=event.row(), text=event.summary))
        state.last_event = event
        return event


def _directions(v: Verdict) -> dict[str, str]:
    out = {}
    for feature in v.fired:
        value = v.z.get(feature, 0.0)
        out[feature] = "up" if value >= 0 else "down"
    return out


def _clock(moment: datetime, asset_type: AssetType) -> str:
    if asset_type is AssetType.STOCK:
        return moment.astimezone(NEW_YORK).strftime("%b %d %H:%M ET")
    return moment.strftime("%b %d %H:%M UTC")


def _span(minutes: int) -> str:
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.0f} h"


def summary(v: Verdict, kind: str, window: timedelta, alert: Alert | None = None) -> str:
    """One line a person reads: "TSLA +3.1% in 5 min on 4.2x usual volume, Mar 15 09:45 ET"."""
    bar = v.bar
    when = _clock(alert.opened_at if alert else bar.window_start, bar.asset_type)
    minutes = int(window.total_seconds() // 60)
    if kind == DATA_FAULT:
        move = f" ({v.move_pct:+.1f}%)" if v.move_pct is not None else ""
        what = (v.fault or "data fault").replace("_", " ")
        return f"{bar.symbol} data fault: {what} at {bar.close:.6g}{move}, {when}"
    parts = [bar.symbol]
    if MOVE in v.fired and v.move_pct is not None:
        span = int(v.move_minutes) if v.move_minutes else minutes  # since the last good close
        parts.append(f"{v.move_pct:+.1f}% in {_span(span)}")
    elif v.move_pct is not None:
        parts.append(f"{v.move_pct:+.2f}%")
    if v.volume_ratio is not None and (VOLUME in v.fired or MOVE in v.fired):
        parts.append(f"on {v.volume_ratio:.1f}x usual volume")
    if RANGE in v.fired:
        parts.append(f"range z {v.z.get(RANGE, 0.0):+.1f}")
    if alert is not None and alert.window_count > 1:
        parts.append(f"({alert.window_count} windows)")
    return " ".join(parts) + f", {when}"
