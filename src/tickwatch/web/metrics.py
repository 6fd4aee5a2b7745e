"""Prometheus metrics at `/metrics`, read from the running pipeline at scrape time.

Nothing is counted twice: the collector reads `Processor.counters`, the supervised tasks and
the sources' health when Prometheus scrapes, so the numbers are the ones the status line shows.

Lag gauges (seconds, wall clock minus data time):
- `tickwatch_event_lag_seconds`: now minus the newest event time processed (source freshness);
- `tickwatch_window_lag_seconds`: now minus the newest window end written, the end-to-end delay
  from a bar closing in the market to its row in the store (includes the allowed lateness).
A replay or an old store reads large.
What the store holds (also under `tickwatch serve`, with no pipeline) is `store_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tickwatch.web.pipeline_view import PipelineView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PipelineCollector(Collector):
    def __init__(
        self,
        pipeline: PipelineView | None,
        clients: Callable[[], int],
        clock: Callable[[], datetime],
    ) -> None:
        self.pipeline = pipeline
        self.clients = clients
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "tickwatch_stream_clients", "Open live-stream (SSE) connections", value=self.clients()
        )
        if self.pipeline is None:
            return
        c = self.pipeline.counters
        for name, help_text, value in (
            ("ticks_in", "Records read from the sources", c.ticks_in),
            ("ticks_accepted", "Ticks accepted into windows", c.accepted),
            ("ticks_rejected", "Records rejected as invalid (dead letters)", c.rejected),
            (
                "ticks_late",
                "Ticks for windows that had already closed (kept as dead letters)",
                c.late,
            ),
            ("ticks_duplicate", "Duplicate ticks counted once", c.duplicates),
            ("windows", "5-minute windows closed and stored", c.windows),
        ):
            yield CounterMetricFamily(f"tickwatch_{name}", help_text, value=value)
        anomalies = CounterMetricFamily(
            "tickwatch_anomalies", "Anomalies detected", labels=["anomaly_type", "severity"]
        )
        for (kind, severity), n in sorted(c.anomalies.items()):
            anomalies.add_metric([kind, severity], n)
        yield anomalies
        errors = CounterMetricFamily(
            "tickwatch_source_errors",
            "Source task crashes (restarted with backoff)",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "tickwatch_source_up", "1 when the source reports state ok", labels=["source", "state"]
        )
        tasks = self.pipeline.supervisor.tasks
        for source in self.pipeline.sources:
            task = tasks.get(f"source:{source.name}")
            errors.add_metric([source.name], task.restarts if task else 0)
            up.add_metric([source.name, source.health.state], float(source.health.state == "ok"))
        yield errors
        yield up
        now = self.clock()
        for name, moment, help_text in (
            ("event", c.last_event_time, "Now minus the newest event time processed"),
            ("window", c.last_window_end, "Now minus the newest window end stored (end-to-end)"),
        ):
            if moment is not None:
                yield GaugeMetricFamily(
                    f"tickwatch_{name}_lag_seconds", help_text, value=(now - moment).total_seconds()
                )


def registry_for(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
