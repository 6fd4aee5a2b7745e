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
from datetime import datetime

from tickwatch.alerts import WebhookNotifier
from tickwatch.bus import Bus, Consumer
from tickwatch.bus.memory import MemoryBus
from tickwatch.config import Settings
from tickwatch.model import MARKET_ANOMALIES, RAW_CRYPTO_TICKS, RAW_STOCK_TICKS, AssetType
from tickwatch.ops.supervise import Supervisor
from tickwatch.processor import Counters, Processor, utc_now
from tickwatch.sources import Record, Source
from tickwatch.store import ParquetLake, SqlStore
from tickwatch.store.wal import TickLog
from tickwatch.web import WebServer, create_app

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 30.0  # lake flush and tick-log trim
SIMULATED_DIR = "simulated"  # simulated runs keep their data in DATA_DIR/simulated


def raw_topic(record: Record) -> str:
    """The raw topic of a record; anything not clearly crypto goes to the stock topic."""
    if isinstance(record, dict) and record.get("asset_type") == AssetType.CRYPTO.value:
        return RAW_CRYPTO_TICKS
    return RAW_STOCK_TICKS


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
        self.tick_log = TickLog(settings.data_dir / "ticks.wal")
        self.processor = Processor(settings, self.store, self.lake, self.bus, clock, self.tick_log)
        self.supervisor = Supervisor(self.stop)
        self._consumer: Consumer | None = None
        if self.embedded_engine:
            self._consumer = self.bus.subscribe([RAW_STOCK_TICKS, RAW_CRYPTO_TICKS])
        self._engine_done = threading.Event()
        # Webhook alerts (off unless ALERT_WEBHOOK_URL) follow the embedded engine's anomalies.
        self.notifier: WebhookNotifier | None = None
        self._anomalies: Consumer | None = None
        if self.embedded_engine:
            self.notifier = WebhookNotifier.from_settings(settings, self.store.engine)
            if self.notifier is not None:
                self._anomalies = self.bus.subscribe([MARKET_ANOMALIES])
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

    def sources_finished(self) -> bool:
        return self.supervisor.all_finished("source:")

    def _pump(self, source: Source) -> None:
        for batch in source.batches(self.stop):
            for record in batch:
                key = str(record.get("symbol", "")) if isinstance(record, dict) else ""
                self.bus.publish(raw_topic(record), key, record)
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
            if time.monotonic() - last_flush > CHECKPOINT_SECONDS:
                self.processor.checkpoint()
                last_flush = time.monotonic()

    def _alert(self) -> None:
        """Send anomalies to the webhook (alerts.py) as the engine publishes them."""
        assert self.notifier is not None and self._anomalies is not None
        while not self.stop.is_set():
            for _, anomaly in self._anomalies.poll(1000, 0.2):
                self.notifier.notify(anomaly)

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
                for _, anomaly in items:
                    self.notifier.notify(anomaly)
            self._anomalies.close()
            self.notifier.close()
        self.bus.close()
        self.tick_log.close()
        self.store.close()
        log.info("runtime stopped: %s", self.processor.counters.as_dict())
