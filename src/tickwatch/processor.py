"""One batch at a time: records → validated ticks → engine → SQL store, Parquet lake, bus.

This is the seam the CLI, the runtime and the benchmarks share. Rejected records (invalid or
late) go to the dead-letter table with their reason; nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tickwatch.alerting import AlertStage, alert_engine
from tickwatch.bus import Bus
from tickwatch.clock import from_micros
from tickwatch.clock import utc_now as utc_now
from tickwatch.config import Settings
from tickwatch.decoding import decode as decode
from tickwatch.engine import ColumnarOutput, EngineOutput, make_engine
from tickwatch.engine.batch import ASSET_TYPES, TickBatch
from tickwatch.engine.divergence import Divergence, DivergenceTracker
from tickwatch.engine.episodes import AlertOutput, Notice
from tickwatch.errors import InvalidTick, StoreError
from tickwatch.markets import calendar_for
from tickwatch.model import (
    CLEAN_MARKET_DATA,
    MARKET_ANOMALIES,
    Anomaly,
    AssetType,
    Feature,
    Rejected,
    Tick,
    Window,
)
from tickwatch.normalize import parse_tick, reject
from tickwatch.sources import Record
from tickwatch.store import ParquetLake, SqlStore
from tickwatch.store.divergence_rows import divergences, open_divergences
from tickwatch.store.parquet import SCHEMAS
from tickwatch.store.ticklog import TickLog

log = logging.getLogger(__name__)

MAX_ANOMALY_LINES = 5  # per batch; more are summarised in one line

_Pending = tuple[list[Window] | pa.Table, list[Anomaly], list[Rejected]]


@dataclass
class _Held:
    """A batch for the store and its write, None until submitted (again, after a failure)."""

    rows: _Pending
    write: Future[None] | None = None


@dataclass
class Counters:
    """Running totals of one process, read by the status line, the summary and /metrics."""

    ticks_in: int = 0
    accepted: int = 0
    rejected: int = 0
    late: int = 0
    duplicates: int = 0
    windows: int = 0
    anomalies: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    last_event_time: datetime | None = None
    last_window_end: datetime | None = None
    alerts_opened: int = 0  # market alert episodes (kind market)
    market_events: int = 0
    data_faults: int = 0  # data-fault episodes

    @property
    def anomaly_total(self) -> int:
        return sum(self.anomalies.values())

    def as_dict(self) -> dict[str, object]:
        by_type: Counter[str] = Counter()
        by_severity: Counter[str] = Counter()
        for (kind, severity), n in self.anomalies.items():
            by_type[kind] += n
            by_severity[severity] += n
        return {
            "ticks_in": self.ticks_in,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "late": self.late,
            "duplicates": self.duplicates,
            "windows": self.windows,
            "anomalies": self.anomaly_total,
            "anomalies_by_type": dict(by_type),
            "anomalies_by_severity": dict(by_severity),
            "rejected_reasons": dict(self.rejected_reasons.most_common(10)),
            "alerts_opened": self.alerts_opened,
            "market_events": self.market_events,
            "data_faults": self.data_faults,
        }


class Processor:
    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        lake: ParquetLake | None,
        bus: Bus | None = None,
        clock: Callable[[], datetime] = utc_now,
        tick_log: TickLog | None = None,
        notify: Callable[[Notice], object] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.lake = lake
        self.bus = bus
        self.clock = clock
        self.tick_log = tick_log
        self.engine = make_engine(settings.engine_config(), clock)
        self.alerts = AlertStage(alert_engine(settings), store, lake, bus, notify)
        self.counters = Counters()
        self._pending: deque[_Held] = deque()  # batches not known to be stored yet
        self._store_error: str | None = None
        self.divergence = DivergenceTracker(
            settings.divergence_bps,
            settings.divergence_seconds,
            settings.divergence_fault_bps,
            settings.divergence_stale_seconds,
        )
        self._divergences: dict[tuple[str, str, datetime], Divergence] = {}  # held for the store
        # newest event time of each stock and whether it arrived in real time
        self._stocks: dict[str, tuple[datetime, bool]] = {}

    def restore(self) -> int:
        """Rebuild baselines from the store, then re-feed the tick log's open windows.

        Returns the number of stored windows read. Logged ticks of windows that were stored
        before the stop come back as late; they were counted the first time, so they are dropped.
        """
        history = self.store.recent_windows(self.settings.lookback_windows)
        self.engine.restore(history)
        self.alerts.warm(self.store.recent_windows(self.settings.alert_restore_windows))
        if history:
            log.info("restored baselines from %d stored windows", len(history))
        self.divergence.resume(open_divergences(self.store.engine))
        if self.tick_log is not None:
            logged = self.tick_log.read()
            self._store_divergences(self.divergence.observe(logged))
            out = self.engine.process(logged)
            out.late.clear()
            self._emit(out, [], [])
            if out.accepted:
                log.info(
                    "re-fed %d logged ticks of windows still open at the last stop", out.accepted
                )
        return len(history)

    def checkpoint(self) -> None:
        """Flush the lake and shrink the tick log to the open windows' ticks.

        Only when every closed window is in the store: the log must still hold the ticks of
        any window whose write is held (or still running on the store's writer thread).
        """
        if self.lake is not None:
            self.lake.flush()
        if self.tick_log is not None:
            self._flush_writes()
        if self.tick_log is not None and not self._pending:
            self.tick_log.rewrite(self.engine.open_ticks())

    def handle(self, records: Sequence[Record]) -> EngineOutput:
        now = self.clock()
        skew = self.settings.max_clock_skew
        ticks: list[Tick] = []
        rejected: list[Rejected] = []
        for record in records:
            try:
                ticks.append(parse_tick(decode(record), now, skew))
            except InvalidTick as error:
                rejected.append(reject(record, error, now))
        if self.tick_log is not None:
            self.tick_log.append(ticks)
        self._store_divergences(self.divergence.observe(ticks))
        out = self._process(TickBatch.from_ticks(ticks), rejected, ticks)
        self.counters.ticks_in += len(records)
        lateness = self.settings.allowed_lateness
        for tick in ticks:
            if tick.asset_type is AssetType.STOCK:
                newest = self._stocks.get(tick.symbol)
                if newest is None or tick.event_time > newest[0]:
                    live = now - tick.event_time <= lateness
                    self._stocks[tick.symbol] = (tick.event_time, live)
        return out

    def close_ended_sessions(self) -> None:
        """Close the last windows of each stock whose exchange session ended more than the
        allowed lateness ago, at the session's close, instead of at the next morning's first
        tick. Only for a stock that was streaming in real time (its newest tick arrived within
        the allowed lateness of its event time): a backfill of past days closes on its data,
        as a replay does, so both store the same windows."""
        calendar = calendar_for(AssetType.STOCK)
        assert calendar is not None
        now = self.clock()
        due: dict[str, datetime] = {}
        for symbol, (newest, live) in list(self._stocks.items()):
            close = calendar.close_of(newest) if live else None
            if close is None or now >= close + self.settings.allowed_lateness:
                del self._stocks[symbol]
                if close is not None:
                    due[symbol] = close
        if due:
            self._emit(self.engine.advance(due), [], [])

    def handle_batch(self, batch: TickBatch) -> None:
        """Ticks already validated as columns (`sources.replay_columns`): no per-record parsing, raw
        ticks to the lake as one Arrow table, and (without a bus to publish `Window` objects
        on) closed windows to the store and the lake as one Arrow table too. Only the tick
        log keeps rows (it stores Tick objects)."""
        if self.tick_log is not None:
            self.tick_log.append([batch.tick(i) for i in range(len(batch))])
        self._store_divergences(self.divergence.observe_batch(batch))
        self._process(batch, [], [])
        if self.lake is not None and len(batch):
            self.lake.write_tick_table(batch.to_arrow())
        self.counters.ticks_in += len(batch)
        if len(batch):
            latest = from_micros(int(batch.event.max()))
            if self.counters.last_event_time is None or latest > self.counters.last_event_time:
                self.counters.last_event_time = latest

    def _process(
        self, batch: TickBatch, invalid: list[Rejected], ticks: list[Tick]
    ) -> EngineOutput:
        """The engine on `batch`, its results to the sinks. The closed windows stay columns
        (one Arrow table for the store and the lake) unless a bus needs `Window` objects;
        the returned output then carries the anomalies, late ticks and counts only."""
        result = self.engine.process_batch(batch)
        if self.bus is not None:
            out = result.to_engine_output()
            self._emit(out, invalid, ticks)
            return out
        out = EngineOutput(
            anomalies=result.anomalies(),
            late=result.late,
            accepted=result.accepted,
            duplicates=result.duplicates,
        )
        self._emit(out, invalid, ticks, window_table(result))
        return out

    def _store_divergences(self, found: list[Divergence]) -> None:
        """Upsert flagged divergences; while the store fails they are held (newest state per
        key) and go with the next ones."""
        for row in found:  # flagged, grown or ended: rare, each worth a line
            log.info("divergence %s %s (%s)", row.symbol, row.summary, row.kind)
            self._divergences[(row.symbol, row.venues, row.started_at)] = row
        if not self._divergences:
            return
        try:
            self.store.submit(
                self.store.upsert, divergences, [d.as_row() for d in self._divergences.values()]
            )
            self.store.flush()  # rare rows: held until known to be stored
        except StoreError as exc:
            log.warning("divergences held for the store: %s", exc)
            return
        self._divergences.clear()

    def _count_alerts(self, out: AlertOutput) -> None:
        opened = self.alerts.engine.opened
        self.counters.alerts_opened = opened["market"]
        self.counters.data_faults = opened["data_fault"]
        self.counters.market_events += sum(1 for n in out.notices if n.kind == "market_event")

    def retry(self) -> None:
        """Retry held store writes (called when no input arrives)."""
        if self._pending:
            self._store_write(None)

    def finish(self) -> EngineOutput:
        """Close every open window and flush the lake (end of input or shutdown).

        Held writes get one more try. Rows that still cannot be stored (a full disk, a
        corrupt file, a store that is down) raise `StoreError` saying how many and where, so
        no caller reports success over lost rows; the tick log then keeps its ticks, so a
        restarted `run` stores them once the fault is fixed.
        """
        out = self.engine.flush()
        self._emit(out, [], [])
        self._count_alerts(self.alerts.finish())
        self.retry()
        self._flush_writes()
        if self.lake is not None:
            self.lake.compact_all()
        lake_held = self.lake.held if self.lake is not None else 0
        if self.tick_log is not None and not self._pending and not lake_held:
            self.tick_log.rewrite([])
        windows, anomalies, letters = self.held_rows
        if windows + anomalies + letters + lake_held:
            problems = []
            if self._pending:
                problems.append(
                    f"{windows:,} windows, {anomalies:,} anomalies and {letters:,} dead letters "
                    f"not written to the store ({self._store_error})"
                )
            if lake_held and self.lake is not None:
                problems.append(
                    f"{lake_held:,} rows not written to the lake {self.lake.root} "
                    f"({self.lake.error})"
                )
            total = windows + anomalies + letters + lake_held
            raise StoreError(
                f"could not store {total:,} rows: {'; '.join(problems)}. Free disk space or "
                "repair the store, then run again (writes are idempotent upserts)"
            )
        return out

    @property
    def store_error(self) -> str | None:
        """Why the store is not taking writes (rows are held and retried), or None."""
        return self._store_error

    def _store_write(self, batch: _Pending | None) -> None:
        """Write held batches oldest first, then `batch`; on failure hold them all for later.

        The engine's state has already moved on, so a failed write must never lose its rows.
        A bulk store writes on its own thread: a batch stays held until its write's future
        says it is stored, and a failure (seen here or by any later call on the store) sends
        it and every batch after it again, in order.
        """
        if batch is not None:
            self._pending.append(_Held(batch))
        self._settle()
        try:
            for held in self._pending:
                if held.write is None:
                    held.write = self.store.submit(self.store.write, *held.rows)
        except StoreError as exc:
            self._failed(exc)
        self._settle()

    def _flush_writes(self) -> None:
        """Wait for the writes on the store's thread, so `_pending` holds exactly the unstored."""
        try:
            self.store.flush()
        except StoreError as exc:
            self._failed(exc)
        self._settle()

    def _settle(self) -> None:
        """Drop the stored batches from the front; a failed write (or one the writer skipped
        after a failure) is marked for submitting again."""
        stored = False
        while self._pending and _succeeded(self._pending[0].write):
            self._pending.popleft()
            stored = True
        for held in self._pending:
            if held.write is not None and held.write.done() and held.write.exception():
                self._failed(held.write.exception())
                held.write = None
        if stored and self._store_error is not None and all(h.write for h in self._pending):
            log.warning("store writes recovered")
            self._store_error = None

    def _failed(self, error: BaseException | None) -> None:
        if self._store_error is None:
            log.error("store write failed, holding rows and retrying: %s", error)
        self._store_error = str(error)

    @property
    def held_batches(self) -> int:
        return len(self._pending)

    @property
    def held_rows(self) -> tuple[int, int, int]:
        """Windows, anomalies and dead letters held for the store (not written yet)."""
        return (
            sum(len(h.rows[0]) for h in self._pending),
            sum(len(h.rows[1]) for h in self._pending),
            sum(len(h.rows[2]) for h in self._pending),
        )

    def _emit(
        self,
        out: EngineOutput,
        invalid: list[Rejected],
        ticks: list[Tick],
        table: pa.Table | None = None,
    ) -> None:
        """Store, lake, bus and counters; the closed windows are `out.windows`, or `table`
        (their `clean_market_data` rows as columns) when given."""
        windows: list[Window] | pa.Table = out.windows if table is None else table
        self._store_write((windows, out.anomalies, [*invalid, *out.late]))
        self._count_alerts(self.alerts.observe(windows))
        if self.lake is not None:
            self.lake.write_ticks(ticks)
            self.lake.write_windows(windows)
        if self.bus is not None:
            for window in out.windows:
                self.bus.publish(CLEAN_MARKET_DATA, window.symbol, window)
            for anomaly in out.anomalies:
                self.bus.publish(MARKET_ANOMALIES, anomaly.symbol, anomaly)
        c = self.counters
        c.accepted += out.accepted
        c.duplicates += out.duplicates
        # the engine's list also carries refusals of kind "invalid" (an asset-type conflict)
        late = sum(1 for r in out.late if r.kind == "late")
        c.rejected += len(invalid) + len(out.late) - late
        c.late += late
        c.windows += len(windows)
        for r in [*invalid, *out.late]:
            c.rejected_reasons[r.reason.split(":")[0]] += 1
        for a in out.anomalies:
            c.anomalies[(a.anomaly_type.value, a.severity.value)] += 1
        if len(out.anomalies) > MAX_ANOMALY_LINES:  # a backfill or replay: one line, not hundreds
            high = sum(1 for a in out.anomalies if a.severity.value == "high")
            log.info("%d anomalies in %d windows (%d high)", len(out.anomalies), len(windows), high)
        else:
            for a in out.anomalies:
                log.info(
                    "anomaly %s %s %s z=%+.2f (%.4g vs mean %.4g) window %s",
                    a.severity.value.upper(),
                    a.symbol,
                    a.anomaly_type.value,
                    a.z_score,
                    a.value,
                    a.mean,
                    a.window_start.isoformat(),
                )
        if ticks:
            latest = max(t.event_time for t in ticks)
            if c.last_event_time is None or latest > c.last_event_time:
                c.last_event_time = latest
        if len(windows):
            end: datetime = (
                max(w.window_end for w in out.windows)
                if table is None
                else from_micros(pc.max(table["window_end"]).value)
            )
            if c.last_window_end is None or end > c.last_window_end:
                c.last_window_end = end


def _succeeded(write: Future[None] | None) -> bool:
    return write is not None and write.done() and write.exception() is None


_ASSET_TEXT = pa.array([a.value for a in ASSET_TYPES])


def window_table(result: ColumnarOutput) -> pa.Table:
    """The closed windows of `result` as `clean_market_data` rows (the lake's schema): the
    values `to_engine_output` puts in each `Window` and `Window.as_row` reads back, taken from
    the engine's columns at once. NaN is null where the column is nullable (volume, vwap,
    volatility, scores), as `to_engine_output` turns it into None there."""
    schema = SCHEMAS[CLEAN_MARKET_DATA]
    w, s = result.windows, result.scores
    if w is None or s is None or result.assets is None:
        return schema.empty_table()
    sym = pa.array(w.sym)
    start = pa.array(w.start, pa.int64())
    columns: dict[str, pa.Array] = {
        "symbol": pa.array(result.symbols, pa.string()).take(sym),
        "asset_type": _ASSET_TEXT.take(pa.array(result.assets).take(sym)),
        "window_start": start.cast(schema.field("window_start").type),
        "window_end": pc.add(start, result.size).cast(schema.field("window_end").type),
        "open": pa.array(w.open),
        "high": pa.array(w.high),
        "low": pa.array(w.low),
        "close": pa.array(w.close),
        "volume": _nullable(w.volume),
        "tick_count": pa.array(w.tick_count, pa.int64()),
        "vwap": _nullable(w.vwap),
        "price_return_pct": pa.array(w.price_return_pct),
        "volatility": _nullable(w.volatility),
    }
    for k, feature in enumerate(Feature):
        for stat, values in (("mean", s.mean), ("std", s.std), ("z", s.z)):
            columns[f"{feature.value}_{stat}"] = _nullable(values[k])
    return pa.Table.from_pydict(columns, schema=schema)


def _nullable(values: np.ndarray[Any, np.dtype[np.float64]]) -> pa.Array:
    return pa.array(values, pa.float64(), mask=np.isnan(values))
