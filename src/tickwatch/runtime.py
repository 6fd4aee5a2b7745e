"""The embedded runtime: supervised sources → in-process bus → engine → stores, in one process.

Sources publish records to the raw topics; one consumer feeds them to the Processor in
batches. Each source and the consumer run as supervised tasks, so a crashing source is
restarted with backoff while the rest keeps running.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tickwatch.alerting import notice_from
from tickwatch.alerts import WebhookNotifier
from tickwatch.bus import Bus, Consumer
from tickwatch.bus.memory import MemoryBus
from tickwatch.config import Settings
from tickwatch.model import MARKET_ALERTS, RAW_CRYPTO_TICKS, RAW_STOCK_TICKS, AssetType
from tickwatch.ops.supervise import Supervisor
from tickwatch.processor import Counters, Processor, utc_now
from tickwatch.sources import Record, Source
from tickwatch.sources.simulate import MarketSimulator, SimulatedSource
from tickwatch.store import ParquetLake, SqlStore
from tickwatch.store.ticklog import TickLog, read_ticks
from tickwatch.web import WebServer, create_app

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 30.0  # lake flush and tick-log trim
SIMULATED_DIR = "simulated"  # simulated runs keep their data in DATA_DIR/simulated
TICK_LOG = "ticks.wal"


def raw_topic(record: Record) -> str:
    """The raw topic of a record; anything not clearly crypto goes to the stock topic."""
    if isinstance(record, dict) and record.get("asset_type") == AssetType.CRYPTO.value:
        return RAW_CRYPTO_TICKS
    return RAW_STOCK_TICKS


def publish_raw(bus: Bus, batch: list[Record]) -> None:
    """Publish a source's batch to the raw topics, each record keyed by its symbol."""
    for record in batch:
        key = str(record.get("symbol", "")) if isinstance(record, dict) else ""
        bus.publish(raw_topic(record), key, record)


def open_bus(settings: Settings) -> Bus:
    """The bus BUS names: the in-process queue, or Kafka at KAFKA_BOOTSTRAP_SERVERS."""
    if settings.bus == "kafka":
        from tickwatch.extras import require

        require("kafka", "BUS=kafka")
        from tickwatch.bus.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap_servers, partitions=settings.kafka_topic_partitions
        )
    return MemoryBus()


MARKET_FILE = "market.json"  # DATA_DIR/market.json: the simulated market's seed and origin


def simulated_source(settings: Settings, now: datetime | None = None) -> SimulatedSource:
    """The simulator for `tickwatch run`, continuing this data dir's market after a restart.

    A new market backfills `SIM_HISTORY_HOURS` at once, plays about ten minutes of wall time
    at SIM_SPEED up to the present, then runs in real time (simulated data never lies in the
    future); its seed, symbols, origin and
    start are kept in DATA_DIR/market.json. A restart regenerates that same market (same seed
    and origin, so the same price path) and emits, per symbol, only the ticks after those the
    pipeline already has: the newest stored window's end, or the newest tick in the tick log
    (re-fed by `Processor.restore`). So a restart after SIGKILL neither gives the windows open
    at the kill a second price path nor leaves a gap, and the stores end up as those of a run
    that was never stopped. A data dir with history but no (or another) market file resumes
    the old way: a new path from the newest stored window.
    """
    now = now or datetime.now(UTC)
    path = settings.data_dir / MARKET_FILE
    identity = {
        "seed": settings.sim_seed,
        "stocks": list(settings.stock_symbols),
        "cryptos": list(settings.crypto_ids),
    }
    simulator = MarketSimulator(settings.stock_symbols, settings.crypto_ids, settings.sim_seed)
    store = SqlStore(settings.database_url)
    try:
        ends = store.latest_window_ends()
    finally:
        store.close()
    logged: dict[str, datetime] = {}
    for tick in read_ticks(settings.data_dir / TICK_LOG):
        if tick.symbol not in logged or tick.event_time > logged[tick.symbol]:
            logged[tick.symbol] = tick.event_time
    market = _read_market(path)
    if market is not None and {k: market.get(k) for k in identity} == identity:
        begin = datetime.fromisoformat(market["begin"])
        skip = {
            symbol: max(ends.get(symbol, begin), logged[symbol] + _TICK)
            if symbol in logged
            else ends.get(symbol, begin)
            for symbol in {*ends, *logged}
        }
        start = max([datetime.fromisoformat(market["start"]), *skip.values()])
        if skip:
            log.info("resuming the simulated market of %s at %s", path, start.isoformat())
        return SimulatedSource(simulator, start, start - begin, settings.sim_speed, skip=skip)
    if ends:
        resume = max(ends.values())
        log.info("resuming the simulated market at %s (new price path)", resume.isoformat())
        return SimulatedSource(simulator, max(resume, now), timedelta(0), settings.sim_speed)
    # SIM_HISTORY_HOURS are backfilled at once, then CATCH_UP of wall time plays at SIM_SPEED
    # up to the present, then the market runs in real time, never ahead of the clock
    start = now - CATCH_UP * settings.sim_speed
    begin = start - timedelta(hours=settings.sim_history_hours)
    market = {**identity, "begin": begin.isoformat(), "start": start.isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(market, option=orjson.OPT_INDENT_2))
    return SimulatedSource(simulator, start, start - begin, settings.sim_speed)


CATCH_UP = timedelta(minutes=10)


_TICK = timedelta(microseconds=1)


def _read_market(path: Path) -> dict[str, Any] | None:
    try:
        market = orjson.loads(path.read_bytes())
        datetime.fromisoformat(market["begin"])
        datetime.fromisoformat(market["start"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return market if isinstance(market, dict) else None


class Runtime:
    def __init__(
        self,
        settings: Settings,
        sources: Sequence[Source],
        clock: Callable[[], datetime] = utc_now,
        web: bool = False,
    ) -> None:
        """With `web`, the dashboard and API are served on WEB_HOST:WEB_PORT while it runs."""
        self.settings = settings
        self.sources = list(sources)
        self.stop = threading.Event()
        self.bus = open_bus(settings)
        # On Kafka the runtime only produces; the Spark job (`tickwatch spark`) processes.
        self.embedded_engine = settings.bus == "memory"
        self.published = 0  # records the sources handed to the bus
        self._published_lock = threading.Lock()
        self.store = SqlStore(settings.database_url)
        self.lake = ParquetLake(settings.data_dir / "lake")
        self.tick_log = TickLog(settings.data_dir / TICK_LOG)
        self.processor = Processor(settings, self.store, self.lake, self.bus, clock, self.tick_log)
        self.supervisor = Supervisor(self.stop)
        self._consumer: Consumer | None = None
        if self.embedded_engine:
            self._consumer = self.bus.subscribe([RAW_STOCK_TICKS, RAW_CRYPTO_TICKS])
        self._engine_done = threading.Event()
        # Webhook notices (off unless ALERT_WEBHOOK_URL) follow the alert stage's topic.
        self.notifier: WebhookNotifier | None = None
        self._anomalies: Consumer | None = None
        if self.embedded_engine:
            self.notifier = WebhookNotifier.from_settings(settings, self.store.engine)
            if self.notifier is not None:
                self._anomalies = self.bus.subscribe([MARKET_ALERTS])
        self.web: WebServer | None = None
        if web:
            simulated = settings.data_dir.name == SIMULATED_DIR
            app = create_app(settings, simulated=simulated, pipeline=self, clock=clock)
            self.web = WebServer(app, settings.web_host, settings.web_port)

    @property
    def counters(self) -> Counters:
        return self.processor.counters

    def start(self) -> None:
        if self.embedded_engine:
            self.processor.restore()
            self._restore_lake()
            self.supervisor.start("engine", self._consume)
        if self.notifier is not None:
            self.supervisor.start("alerts", self._alert)
        for source in self.sources:
            self.supervisor.start(f"source:{source.name}", functools.partial(self._pump, source))
        if self.web is not None:
            self.supervisor.start("web", self.web.run)
        log.info(
            "runtime started: sources %s, store %s, lake %s",
            ", ".join(s.name for s in self.sources),
            self.store.engine_url_masked,
            self.lake.root,
        )

    def _restore_lake(self) -> None:
        """Write again the lake rows a SIGKILL may have caught in the lake's memory buffer.

        The lake is flushed before each tick-log trim (`_consume`), so what was buffered at a
        crash is covered by the log: its raw ticks, and the windows of those ticks that were
        already stored. Writing rows the lake already has is harmless (latest write wins,
        compaction keeps one row per key, and the values are the same)."""
        logged = self.tick_log.read()
        if not logged:
            return
        self.lake.write_ticks(logged)
        first: dict[str, datetime] = {}
        for tick in logged:
            if tick.symbol not in first or tick.event_time < first[tick.symbol]:
                first[tick.symbol] = tick.event_time
        size = self.settings.window.total_seconds()
        starts = {
            symbol: datetime.fromtimestamp(moment.timestamp() // size * size, UTC)
            for symbol, moment in first.items()
        }
        windows = self.store.windows_from(starts)
        self.lake.write_windows(windows)
        log.info("lake: wrote again %d logged ticks and %d windows", len(logged), len(windows))

    def sources_finished(self) -> bool:
        return self.supervisor.all_finished("source:")

    def _pump(self, source: Source) -> None:
        for batch in source.batches(self.stop):
            publish_raw(self.bus, batch)
            with self._published_lock:
                self.published += len(batch)

    def _consume(self) -> None:
        assert self._consumer is not None
        last_flush = time.monotonic()
        while not self.stop.is_set():
            items = self._consumer.poll(10_000, 0.2)
            if items:
                self.processor.handle([value for _, value in items])
            else:
                self.processor.retry()
            self.processor.close_ended_sessions()
            if time.monotonic() - last_flush > CHECKPOINT_SECONDS:
                self.lake.flush()
                if self.lake.error is None:  # the log may only shrink once the lake has it
                    self.processor.checkpoint()
                last_flush = time.monotonic()

    def _alert(self) -> None:
        """Send alert notices to the webhook (alerts.py) as the alert stage publishes them."""
        assert self.notifier is not None and self._anomalies is not None
        while not self.stop.is_set():
            for _, message in self._anomalies.poll(1000, 0.2):
                self._notify(message)

    def _notify(self, message: object) -> None:
        assert self.notifier is not None
        notice = notice_from(message)
        if notice is not None:
            self.notifier.notify(notice)

    def shutdown(self) -> None:
        """Stop sources, drain what they published, close open windows, flush and close.

        Raises `StoreError` (after closing everything) when rows could not be stored."""
        self.stop.set()
        if self.web is not None:
            self.web.stop()
        self.supervisor.join()
        try:
            self._drain()
        finally:
            self._close()

    def _drain(self) -> None:
        if self._consumer is not None:
            while items := self._consumer.poll(10_000, 0.0):
                self.processor.handle([value for _, value in items])
            self.processor.finish()

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self.notifier is not None and self._anomalies is not None:
            while items := self._anomalies.poll(1000, 0.0):
                for _, message in items:
                    self._notify(message)
            self._anomalies.close()
            self.notifier.close()
        self.bus.close()
        self.tick_log.close()
        self.store.close()
        log.info("runtime stopped: %s", self.processor.counters.as_dict())
