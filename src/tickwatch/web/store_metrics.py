"""Store-derived metrics at `/metrics`: what the store holds, read at scrape time.

`tickwatch serve` runs no pipeline (the store is written by `run` elsewhere, a replay or the
Spark job), so the pipeline's counters (`metrics.PipelineCollector`) are absent there; these
gauges come from the store itself, so they hold whoever writes it:

- `tickwatch_store_up`: 1 when the store answered (0, and nothing else, when it did not);
- `tickwatch_store_windows{asset_type}`, `tickwatch_store_symbols`;
- `tickwatch_store_anomalies{anomaly_type,severity}`;
- `tickwatch_store_alerts_open{kind,severity}` (episodes not closed; severity `none` for a data
  fault, which has no peak severity);
- `tickwatch_store_dead_letters{kind}` (invalid, late, ...);
- `tickwatch_store_last_window_age_seconds`: the clock minus the newest window end stored
  (how stale the store is; large for a replayed or old store).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.store.alert_rows import alerts
from tickwatch.store.sql import clean_market_data, dead_letters, market_anomalies

log = logging.getLogger(__name__)


class StoreCollector(Collector):
    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        c, a, e, d = clean_market_data.c, market_anomalies.c, alerts.c, dead_letters.c
        try:
            with self.engine.connect() as conn:
                windows = conn.execute(
                    select(c.asset_type, func.count()).group_by(c.asset_type)
                ).all()
                symbols = conn.execute(select(func.count(func.distinct(c.symbol)))).scalar_one()
                newest = conn.execute(select(func.max(c.window_end))).scalar_one()
                anomalies = conn.execute(
                    select(a.anomaly_type, a.severity, func.count()).group_by(
                        a.anomaly_type, a.severity
                    )
                ).all()
                open_alerts = conn.execute(
                    select(e.kind, e.peak_severity, func.count())
                    .where(e.closed_at.is_(None))
                    .group_by(e.kind, e.peak_severity)
                ).all()
                letters = conn.execute(select(d.kind, func.count()).group_by(d.kind)).all()
        except SQLAlchemyError as exc:
            log.warning("metrics: the store did not answer: %s", str(exc).splitlines()[0])
            yield GaugeMetricFamily("tickwatch_store_up", "1 when the store answered", value=0)
            return
        yield GaugeMetricFamily("tickwatch_store_up", "1 when the store answered", value=1)
        yield _labelled(
            "windows", "Windows stored (clean_market_data rows)", ["asset_type"], windows
        )
        yield GaugeMetricFamily("tickwatch_store_symbols", "Symbols with a window", value=symbols)
        yield _labelled("anomalies", "Anomalies stored", ["anomaly_type", "severity"], anomalies)
        yield _labelled(
            "alerts_open",
            "Alert episodes not closed",
            ["kind", "severity"],
            [(kind, severity or "none", n) for kind, severity, n in open_alerts],
        )
        yield _labelled("dead_letters", "Dead letters stored", ["kind"], letters)
        if newest is not None:
            yield GaugeMetricFamily(
                "tickwatch_store_last_window_age_seconds",
                "The clock minus the newest window end stored",
                value=(self.clock() - newest).total_seconds(),
            )


def _labelled(
    name: str, help_text: str, labels: list[str], rows: Iterable[Sequence[Any]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"tickwatch_store_{name}", help_text, labels=labels)
    for *values, count in rows:
        family.add_metric([str(v) for v in values], count)
    return family
