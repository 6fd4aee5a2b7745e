"""The alert stage: closed windows in, alert episodes and market events out to the sinks.

Wired by `Processor` after each batch's windows are stored, so replay, run and evaluate give
the same alerts (they are computed from market time only, `tickwatch.engine.episodes`). Changed
alerts and events are upserted into the SQL store and the lake and published on the bus topic
`market_alerts`; notices (an alert opened or escalated, a market-wide event) go to the
notifier, which decides whether they are fresh enough to send.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np
import pyarrow as pa

from tickwatch.bus import Bus
from tickwatch.clock import from_micros
from tickwatch.config import Settings
from tickwatch.engine.alert_score import AlertConfig, Bar
from tickwatch.engine.episodes import AlertEngine, AlertOutput, EpisodeConfig, Notice
from tickwatch.errors import StoreError
from tickwatch.model import MARKET_ALERTS, AssetType, Window
from tickwatch.store import ParquetLake, SqlStore
from tickwatch.store.alert_rows import ALERTS, MARKET_EVENTS, alerts, market_events

log = logging.getLogger(__name__)

_Rows = dict[str, dict[str, Any]]  # alert or market event rows by id

_BAR_COLUMNS = (
    "symbol",
    "asset_type",
    "window_start",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "tick_count",
    "volatility",
)


def alert_engine(settings: Settings) -> AlertEngine:
    """The alert engine the settings describe (the engine itself reads no settings)."""
    scoring = AlertConfig(
        window=settings.window,
        z_open=settings.alert_z_open,
        z_continue=settings.alert_z_continue,
        min_move_pct=settings.alert_min_move_pct,
        memory_windows=settings.alert_memory_windows,
        level_windows=settings.alert_level_windows,
        session_alpha=settings.alert_session_alpha,
        tail_factor=settings.alert_tail_factor,
    )
    episodes = EpisodeConfig(
        gap_windows=settings.alert_gap_windows,
        market_min_symbols=settings.alert_market_min_symbols,
        market_fraction=settings.alert_market_fraction,
        severity=(settings.z_threshold, settings.severity_medium, settings.severity_high),
    )
    return AlertEngine(scoring, episodes)


def bars_from_windows(windows: Sequence[Window] | pa.Table) -> list[Bar]:
    """The alert view of closed windows (objects or `clean_market_data` rows as columns),
    in window order so each symbol's windows are judged oldest first."""
    if isinstance(windows, pa.Table):
        return _bars_from_table(windows)
    bars = [
        Bar(
            w.symbol,
            w.asset_type,
            w.window_start,
            w.open,
            w.high,
            w.low,
            w.close,
            w.volume,
            w.tick_count,
            w.volatility,
        )
        for w in windows
    ]
    bars.sort(key=lambda b: b.window_start)
    return bars


def _bars_from_table(table: pa.Table) -> list[Bar]:
    """`bars_from_windows` of columns. A batch holds few distinct window starts: each becomes
    one datetime (in `datetime.UTC`, whose arithmetic is ~3x cheaper than the `ZoneInfo`
    pyarrow gives), shared by its bars; the order is numpy's stable sort of the starts,
    the same order as sorting the bars by start."""
    if not table.num_rows:
        return []
    start = table.column("window_start").cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    micros = start.to_numpy()
    order = np.argsort(micros, kind="stable")
    starts, which = np.unique(micros[order], return_inverse=True)
    moments = [from_micros(us) for us in starts.tolist()]
    kinds = {name: AssetType(name) for name in table.column("asset_type").unique().to_pylist()}
    names = [name for name in _BAR_COLUMNS if name != "window_start"]
    rows = table.select(names).take(pa.array(order))  # reordered by pyarrow, not row by row
    sym, asset, o, h, low, c, v, n, vol = (rows.column(name).to_pylist() for name in names)
    return [
        Bar(s, kinds[a], moments[k], *values)
        for s, a, k, *values in zip(
            sym, asset, which.tolist(), o, h, low, c, v, n, vol, strict=True
        )
    ]


def notice_row(notice: Notice) -> dict[str, Any]:
    return {"kind": notice.kind, "alert": notice.alert, "event": notice.event, "text": notice.text}


def notice_from(message: object) -> Notice | None:
    """The notice in a `market_alerts` message (alert and event rows are skipped)."""
    if not isinstance(message, dict) or not isinstance(message.get("notice"), dict):
        return None
    body = message["notice"]
    return Notice(str(body["kind"]), body.get("alert"), body.get("event"), str(body["text"]))


class AlertStage:
    """Runs the alert engine on each batch of closed windows and writes what changed."""

    def __init__(
        self,
        engine: AlertEngine,
        store: SqlStore | None,
        lake: ParquetLake | None = None,
        bus: Bus | None = None,
        notify: Callable[[Notice], object] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.lake = lake
        self.bus = bus
        self.notify = notify
        self._held: dict[str, dict[str, Any]] = {}  # alert rows the store refused, by id
        self._held_events: dict[str, dict[str, Any]] = {}
        # writes submitted to the store's writer thread, with their rows until known stored
        self._sent: deque[tuple[Future[None], _Rows, _Rows]] = deque()
        self.events = 0  # market-wide events notified

    def observe(self, windows: Sequence[Window] | pa.Table) -> AlertOutput:
        return self._observe(bars_from_windows(windows))  # in window order already

    def observe_bars(self, bars: Sequence[Bar]) -> AlertOutput:
        return self._observe(sorted(bars, key=lambda b: b.window_start))

    def _observe(self, bars: Sequence[Bar]) -> AlertOutput:
        out = self.engine.process(bars)
        self._emit(out)
        return out

    def finish(self) -> AlertOutput:
        out = self.engine.flush()
        self._emit(out)
        return out

    def warm(self, windows: Sequence[Window]) -> None:
        """Rebuild the engine's state from stored history (a restart): the alerts this
        recomputes are upserted again (same ids, same rows), nothing is notified."""
        notify, self.notify = self.notify, None
        try:
            self.observe(windows)
        finally:
            self.notify = notify

    def _emit(self, out: AlertOutput) -> None:
        rows = [alert.row() for alert in out.alerts.values()]
        events = [event.row() for event in out.events.values()]
        self._write(rows, events)
        if self.lake is not None:
            self.lake.write_rows(ALERTS, rows)
            self.lake.write_rows(MARKET_EVENTS, events)
        if self.bus is not None:
            for row in rows:
                self.bus.publish(MARKET_ALERTS, str(row["symbol"]), {"alert": row})
            for event in events:
                self.bus.publish(MARKET_ALERTS, str(event["asset_type"]), {"market_event": event})
        for notice in out.notices:
            if notice.kind == "opened":
                log.info("alert %s", notice.text)
            elif notice.kind == "market_event":
                self.events += 1
                log.info("%s", notice.text)
            if self.bus is not None:
                self.bus.publish(MARKET_ALERTS, "notice", {"notice": notice_row(notice)})
            if self.notify is not None:
                try:
                    self.notify(notice)
                except Exception:  # a notifier must never stop the pipeline
                    log.exception("notifier failed on %s", notice.kind)

    def _write(self, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        if self.store is None:
            return
        self._held.update({str(r["alert_id"]): r for r in rows})
        self._held_events.update({str(e["event_id"]): e for e in events})
        self._settle()
        if not self._held and not self._held_events:
            return
        try:
            write = self.store.submit(self._upsert, self._held, self._held_events)
        except StoreError as exc:
            log.error("alert write failed, holding %d alerts: %s", len(self._held), exc)
            self._settle()
            return
        self._sent.append((write, self._held, self._held_events))
        self._held, self._held_events = {}, {}

    def _upsert(self, rows: _Rows, events: _Rows) -> None:
        assert self.store is not None
        self.store.upsert(alerts, list(rows.values()))
        self.store.upsert(market_events, list(events.values()))

    def _settle(self) -> None:
        """Forget the rows of finished writes; a failed one's rows are held again, under
        any newer version of the same alert or event."""
        failed: _Rows = {}
        failed_events: _Rows = {}
        error: BaseException | None = None
        while self._sent and self._sent[0][0].done():
            write, rows, events = self._sent.popleft()
            if write.exception() is not None:  # oldest first: a later write's rows win
                failed.update(rows)
                failed_events.update(events)
                error = write.exception()
        if failed or failed_events:
            log.error("alert write failed, holding %d alerts: %s", len(failed), error)
            self._held = {**failed, **self._held}
            self._held_events = {**failed_events, **self._held_events}

    @property
    def held(self) -> int:
        """Alert and event rows not known to be stored (those still being written count)."""
        self._settle()
        sent = sum(len(rows) + len(events) for _, rows, events in self._sent)
        return len(self._held) + len(self._held_events) + sent
