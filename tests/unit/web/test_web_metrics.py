"""/metrics and /health read the running pipeline: real Counters, Supervisor and a source."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from tickwatch.bus import Bus
from tickwatch.bus.memory import MemoryBus
from tickwatch.config import Settings
from tickwatch.ops.supervise import Supervisor, TaskStatus
from tickwatch.processor import Counters
from tickwatch.sources import Record, Source, SourceHealth
from tickwatch.web import create_app

NOW = datetime(2024, 3, 4, 12, tzinfo=UTC)


@dataclass
class StaticSource:
    name: str
    health: SourceHealth

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]:
        return iter(())


@dataclass
class Pipeline:
    counters: Counters
    sources: Sequence[Source]
    supervisor: Supervisor
    bus: Bus = field(default_factory=MemoryBus)


def pipeline() -> Pipeline:
    counters = Counters(ticks_in=120, accepted=110, rejected=4, late=3, duplicates=3, windows=7)
    counters.anomalies[("price_spike", "high")] = 2
    counters.anomalies[("volume_surge", "low")] = 1
    counters.last_event_time = NOW - timedelta(seconds=30)
    counters.last_window_end = NOW - timedelta(minutes=15)
    supervisor = Supervisor(threading.Event())
    supervisor.tasks["source:coingecko"] = TaskStatus("source:coingecko", "backoff", 2, "HTTP 429")
    supervisor.tasks["engine"] = TaskStatus("engine", "running")
    sources = [
        StaticSource("coingecko", SourceHealth("paused", "rate limited")),
        StaticSource("alphavantage", SourceHealth("ok")),
    ]
    return Pipeline(counters, sources, supervisor)


def test_metrics_and_health_of_a_running_pipeline(tmp_path: object) -> None:
    settings = Settings(data_dir=tmp_path)  # type: ignore[arg-type]
    app = create_app(settings, pipeline=pipeline(), clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        text = client.get("/metrics").text
        health = client.get("/health").json()
    for line in (
        "tickwatch_ticks_in_total 120.0",
        "tickwatch_ticks_rejected_total 4.0",
        "tickwatch_ticks_late_total 3.0",
        "tickwatch_windows_total 7.0",
        'tickwatch_anomalies_total{anomaly_type="price_spike",severity="high"} 2.0',
        'tickwatch_source_errors_total{source="coingecko"} 2.0',
        'tickwatch_source_errors_total{source="alphavantage"} 0.0',
        'tickwatch_source_up{source="coingecko",state="paused"} 0.0',
        "tickwatch_event_lag_seconds 30.0",
        "tickwatch_window_lag_seconds 900.0",
    ):
        assert line in text, line
    assert health["status"] == "degraded"
    assert health["pipeline"]["counters"]["anomalies"] == 3
    coingecko = next(t for t in health["pipeline"]["tasks"] if t["name"] == "source:coingecko")
    assert (coingecko["state"], coingecko["restarts"], coingecko["last_error"]) == (
        "backoff",
        2,
        "HTTP 429",
    )
    assert [s["state"] for s in health["sources"]] == ["paused", "ok"]
