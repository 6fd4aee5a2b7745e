"""Detection quality: replay labelled ticks through the real pipeline and score its alerts.

Labels are CSV with a header `symbol,start,end[,type]` (ISO 8601 times with an offset): the
simulator's label file (`tickwatch simulate --labels`) or any outside labelled data set. A
label is the range [start, end) of one symbol; `type` (price_spike, volume_surge,
volatility_burst) is optional.

The ticks go through `Processor` (validation, windows, detector, severity) into an in-memory
SQLite store, so what is scored is exactly what the pipeline would have stored. An alert is one
`market_anomalies` row; it *matches* a label when it has the label's symbol and its window
starts inside the label's range.

Overall (any type):
    precision = alerts matching some label / alerts
    recall    = labels matched by some alert / labels
    F1        = 2 * precision * recall / (precision + recall)   (0 when both are 0)
    delay     = (first matching alert's window_start - label start) / window size, in windows,
                averaged over the detected labels (0 = flagged in the labelled window itself)

Per anomaly type T, an alert of type T matches only labels of type T (or untyped labels), and
only labels of type T count for recall; `cross` counts type-T alerts that fell inside a label
of another type (a price jump also raises the window's volatility, for example): they are not
false alarms overall, but they are not hits for T either.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tickwatch.config import Settings
from tickwatch.errors import InvalidTick, SourceError
from tickwatch.model import Anomaly, AnomalyType
from tickwatch.normalize import parse_time
from tickwatch.processor import Processor
from tickwatch.sources import Record
from tickwatch.store import SqlStore

log = logging.getLogger(__name__)

OVERALL = "overall"


@dataclass(frozen=True, slots=True)
class LabelRange:
    """One labelled anomaly: [start, end) of `symbol`, of `anomaly_type` when known."""

    symbol: str
    start: datetime
    end: datetime
    anomaly_type: AnomalyType | None = None

    def contains(self, alert: Anomaly) -> bool:
        return alert.symbol == self.symbol and self.start <= alert.window_start < self.end


def read_labels(path: Path) -> list[LabelRange]:
    """Labels from CSV `symbol,start,end[,type]`; a bad row raises SourceError naming it."""
    if not path.is_file():
        raise SourceError(f"{path}: no such label file")
    labels: list[LabelRange] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"symbol", "start", "end"} - set(reader.fieldnames or ())
        if missing:
            raise SourceError(
                f"{path}: label file needs a header symbol,start,end[,type]; "
                f"missing {', '.join(sorted(missing))}"
            )
        for line, row in enumerate(reader, start=2):
            labels.append(_label(row, f"{path}:{line}"))
    return labels


def _label(row: dict[str, str], where: str) -> LabelRange:
    symbol = (row.get("symbol") or "").strip()
    if not symbol:
        raise SourceError(f"{where}: empty symbol")
    try:
        start = parse_time(row.get("start"), "start")
        end = parse_time(row.get("end"), "end")
    except InvalidTick as exc:
        raise SourceError(f"{where}: {exc.reason}; use ISO 8601 with an offset") from None
    if end <= start:
        raise SourceError(f"{where}: end {end.isoformat()} is not after start {start.isoformat()}")
    text = (row.get("type") or "").strip()
    try:
        kind = AnomalyType(text) if text else None
    except ValueError:
        allowed = ", ".join(t.value for t in AnomalyType)
        raise SourceError(f"{where}: unknown type {text!r}; use one of {allowed}") from None
    return LabelRange(symbol, start, end, kind)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Scores of one anomaly type (or `overall`)."""

    name: str
    labels: int
    detected: int
    alerts: int
    true_alerts: int
    cross: int
    precision: float
    recall: float
    f1: float
    mean_delay: float | None


def f1_score(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0


def _metrics(
    name: str,
    labels: Sequence[LabelRange],
    alerts: Sequence[Anomaly],
    others: Sequence[LabelRange],
    window: timedelta,
) -> Metrics:
    by_symbol: dict[str, list[LabelRange]] = {}
    for label in labels:
        by_symbol.setdefault(label.symbol, []).append(label)
    first: dict[LabelRange, datetime] = {}
    true_alerts = 0
    for alert in alerts:
        hit = False
        for label in by_symbol.get(alert.symbol, ()):
            if label.contains(alert):
                hit = True
                seen = first.get(label)
                if seen is None or alert.window_start < seen:
                    first[label] = alert.window_start
        true_alerts += hit
    cross = sum(
        1
        for alert in alerts
        if not any(label.contains(alert) for label in labels)
        and any(label.contains(alert) for label in others)
    )
    precision = true_alerts / len(alerts) if alerts else 0.0
    recall = len(first) / len(labels) if labels else 0.0
    delays = [(moment - label.start) / window for label, moment in first.items()]
    return Metrics(
        name=name,
        labels=len(labels),
        detected=len(first),
        alerts=len(alerts),
        true_alerts=true_alerts,
        cross=cross,
        precision=precision,
        recall=recall,
        f1=f1_score(precision, recall),
        mean_delay=math.fsum(delays) / len(delays) if delays else None,
    )


def score_alerts(
    alerts: Sequence[Anomaly], labels: Sequence[LabelRange], window: timedelta
) -> list[Metrics]:
    """Metrics per anomaly type, then overall (see the module docstring)."""
    rows = []
    for kind in AnomalyType:
        mine = [la for la in labels if la.anomaly_type in (kind, None)]
        others = [la for la in labels if la.anomaly_type not in (kind, None)]
        typed = [a for a in alerts if a.anomaly_type is kind]
        rows.append(_metrics(kind.value, mine, typed, others, window))
    rows.append(_metrics(OVERALL, labels, alerts, [], window))
    return rows


@dataclass(frozen=True, slots=True)
class Evaluation:
    detector: str
    windows: int
    rejected: int
    metrics: list[Metrics]

    def as_dict(self) -> dict[str, object]:
        return {
            "detector": self.detector,
            "windows": self.windows,
            "rejected": self.rejected,
            "metrics": {m.name: asdict(m) for m in self.metrics},
        }


def evaluate(
    batches: Iterable[Sequence[Record]], labels: Sequence[LabelRange], settings: Settings
) -> Evaluation:
    """Replay record batches through a Processor (in-memory store, no lake) and score it."""
    store = SqlStore("sqlite://")
    processor = Processor(settings, store, lake=None)
    alerts: list[Anomaly] = []
    try:
        for batch in batches:
            alerts.extend(processor.handle(batch).anomalies)
        alerts.extend(processor.finish().anomalies)
    finally:
        store.close()
    counters = processor.counters
    log.info(
        "evaluated %s: %d windows, %d alerts, %d labels",
        settings.detector,
        counters.windows,
        len(alerts),
        len(labels),
    )
    return Evaluation(
        detector=settings.detector,
        windows=counters.windows,
        rejected=counters.rejected + counters.late,
        metrics=score_alerts(alerts, labels, settings.window),
    )
