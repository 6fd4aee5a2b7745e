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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tickwatch import nab
from tickwatch.config import Settings
from tickwatch.engine.episodes import MARKET
from tickwatch.errors import InvalidTick, SourceError
from tickwatch.model import Anomaly, AnomalyType
from tickwatch.normalize import parse_time
from tickwatch.processor import Processor
from tickwatch.sources import Record
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts as alerts_table
from tickwatch.store.sql import clean_market_data

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
class AlertMetrics:
    """Scores of the alert episodes (kind `market`): an alert matches a label of its symbol
    when its span [opened_at, last_window_start + window) overlaps the label's range."""

    labels: int
    detected: int
    alerts: int
    true_alerts: int
    faults: int
    symbol_days: int
    precision: float
    recall: float
    f1: float

    @property
    def per_symbol_day(self) -> float:
        return self.alerts / self.symbol_days if self.symbol_days else 0.0


def score_episodes(
    alerts: Sequence[dict[str, Any]],
    labels: Sequence[LabelRange],
    window: timedelta,
    symbol_days: int,
) -> AlertMetrics:
    market = [a for a in alerts if a["kind"] == MARKET]
    by_symbol: dict[str, list[LabelRange]] = {}
    for label in labels:
        by_symbol.setdefault(label.symbol, []).append(label)
    found: set[LabelRange] = set()
    true_alerts = 0
    for alert in market:
        hits = [
            label
            for label in by_symbol.get(str(alert["symbol"]), ())
            if alert["opened_at"] < label.end and alert["last_window_start"] + window > label.start
        ]
        found.update(hits)
        true_alerts += bool(hits)
    precision = true_alerts / len(market) if market else 0.0
    recall = len(found) / len(labels) if labels else 0.0
    return AlertMetrics(
        labels=len(labels),
        detected=len(found),
        alerts=len(market),
        true_alerts=true_alerts,
        faults=len(alerts) - len(market),
        symbol_days=symbol_days,
        precision=precision,
        recall=recall,
        f1=f1_score(precision, recall),
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    detector: str
    windows: int
    rejected: int
    metrics: list[Metrics]
    alerts: AlertMetrics

    def as_dict(self) -> dict[str, object]:
        return {
            "detector": self.detector,
            "windows": self.windows,
            "rejected": self.rejected,
            "metrics": {m.name: asdict(m) for m in self.metrics},
            "alerts": {**asdict(self.alerts), "per_symbol_day": self.alerts.per_symbol_day},
        }


@dataclass(frozen=True, slots=True)
class Replayed:
    """What one replay through the pipeline left in its (in-memory) store."""

    anomalies: list[Anomaly]
    alerts: list[dict[str, Any]]
    windows: int
    rejected: int
    symbol_days: int


def replay(batches: Iterable[Sequence[Record]], settings: Settings) -> Replayed:
    """Replay record batches through a Processor (in-memory store, no lake)."""
    store = SqlStore("sqlite://")
    processor = Processor(settings, store, lake=None)
    anomalies: list[Anomaly] = []
    try:
        for batch in batches:
            anomalies.extend(processor.handle(batch).anomalies)
        anomalies.extend(processor.finish().anomalies)
        with store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(alerts_table))]
            days = conn.execute(
                select(clean_market_data.c.symbol, clean_market_data.c.window_start)
            ).all()
    finally:
        store.close()
    counters = processor.counters
    return Replayed(
        anomalies=anomalies,
        alerts=sorted(rows, key=lambda r: (r["opened_at"], r["symbol"])),
        windows=counters.windows,
        rejected=counters.rejected + counters.late,
        symbol_days=len({(symbol, start.date()) for symbol, start in days}),
    )


def evaluate(
    batches: Iterable[Sequence[Record]], labels: Sequence[LabelRange], settings: Settings
) -> Evaluation:
    """Replay record batches through the pipeline and score its anomalies and alerts."""
    result = replay(batches, settings)
    log.info(
        "evaluated %s: %d windows, %d anomalies, %d alerts, %d labels",
        settings.detector,
        result.windows,
        len(result.anomalies),
        len(result.alerts),
        len(labels),
    )
    return Evaluation(
        detector=settings.detector,
        windows=result.windows,
        rejected=result.rejected,
        metrics=score_alerts(result.anomalies, labels, settings.window),
        alerts=score_episodes(result.alerts, labels, settings.window, result.symbol_days),
    )


@dataclass(frozen=True, slots=True)
class NabEvaluation:
    """NAB's standard-profile score of the alerts (tickwatch.nab), overall and per category."""

    files: list[nab.FileScore]
    alerts: int
    symbol_days: int
    window_files: list[nab.FileScore]  # every per-window anomaly as a detection (reference)

    @property
    def window_score(self) -> float:
        return nab.normalized(self.window_files)

    @property
    def score(self) -> float:
        return nab.normalized(self.files)

    def categories(self) -> dict[str, float]:
        groups: dict[str, list[nab.FileScore]] = {}
        for file in self.files:
            groups.setdefault(file.name.split("/", 1)[0], []).append(file)
        return {name: nab.normalized(scores) for name, scores in sorted(groups.items())}

    def as_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "categories": self.categories(),
            "per_window_anomalies_score": self.window_score,
            "alerts": self.alerts,
            "alerts_per_symbol_day": self.alerts / self.symbol_days if self.symbol_days else 0,
            "files": [{**asdict(f), "null": f.null, "perfect": f.perfect} for f in self.files],
        }


def evaluate_nab(
    directory: Path,
    settings: Settings,
    progress: Callable[[str], object] | None = None,
) -> NabEvaluation:
    """Every labelled NAB file replayed on its own; detections are market alerts' openings."""
    files: list[nab.FileScore] = []
    window_files: list[nab.FileScore] = []
    alerts = symbol_days = 0
    for series in nab.load(directory):
        records = series.records()
        batches = [records[i : i + 10_000] for i in range(0, len(records), 10_000)]
        result = replay(batches, settings)
        opened = [a["opened_at"] for a in result.alerts if a["kind"] == MARKET]
        files.append(nab.score_file(series, opened))
        flagged = sorted({a.window_start for a in result.anomalies})
        window_files.append(nab.score_file(series, flagged))
        alerts += len(opened)
        symbol_days += result.symbol_days
        if progress is not None:
            progress(series.name)
    return NabEvaluation(files, alerts, symbol_days, window_files)
