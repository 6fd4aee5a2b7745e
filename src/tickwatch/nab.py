"""The Numenta Anomaly Benchmark (NAB): its data format and its standard-profile score.

A NAB directory holds `data/<category>/<name>.csv` (`timestamp,value`, UTC wall times) and
`labels/combined_windows.json` (`{"<category>/<name>.csv": [[start, end], ...]}`). Each file
becomes one symbol `NAB_<name>` of asset type crypto (no exchange session), one tick per row
at its timestamp with `price = value - min(values) + 1` and `volume = value - min(min(values),
0)` (DESIGN.md, "Evaluation on NAB").

Scoring follows NAB's published rules (Lavin and Ahmad, "Evaluating Real-time Anomaly
Detection Algorithms", 2015, and `nab/sweeper.py`), standard profile:

- each detection is placed on the first row at or after its time;
- the first `min(floor(0.15 * rows), 0.15 * 5000)` rows are probationary: ignored;
- a detection inside a label window [L, R] (row indices, width W = R - L + 1) at row i scores
  `sigma(-(R - i + 1) / W) / sigma(-1)` (tp weight 1), where
  `sigma(x) = 2 / (1 + exp(5x)) - 1` for x <= 3, else -1 (the scaled sigmoid); only the
  window's best (its earliest) detection counts;
- a detection outside every window scores `0.11 * sigma((i - R_prev) / (W_prev - 1))` after a
  window [L_prev, R_prev], or `-0.11` before the first window;
- a window without a detection scores -1 (fn weight 1).

The normalised score of a set of files is `100 * (raw - null) / (perfect - null)`, where null
(no detections) is `-windows` and perfect is `+windows`: null scores 0, perfect 100.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from tickwatch.errors import SourceError

TP_WEIGHT = 1.0
FP_WEIGHT = 0.11
FN_WEIGHT = 1.0
PROBATION = 0.15
SOURCE_NAME = "nab"


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid: 1 far before a window's end, -1 far after it."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


@dataclass(frozen=True, slots=True)
class NabSeries:
    """One NAB data file and its label windows."""

    name: str  # "<category>/<file>.csv", the key in combined_windows.json
    times: list[datetime]
    values: list[float]
    windows: list[tuple[datetime, datetime]]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def symbol(self) -> str:
        return "NAB_" + Path(self.name).stem

    def records(self) -> list[dict[str, object]]:
        """One tick per row (DESIGN.md's mapping)."""
        low = min(self.values)
        shift = min(low, 0.0)
        return [
            {
                "source": SOURCE_NAME,
                "asset_type": "crypto",
                "symbol": self.symbol,
                "event_time": moment.isoformat(),
                "ingest_time": moment.isoformat(),
                "price": value - low + 1.0,
                "volume": value - shift,
            }
            for moment, value in zip(self.times, self.values, strict=True)
        ]


def _time(text: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
    except ValueError:
        raise SourceError(f"{where}: {text!r} is not a timestamp") from None


def load(directory: Path) -> list[NabSeries]:
    """Every labelled data file of a NAB directory, sorted by name."""
    labels_path = directory / "labels" / "combined_windows.json"
    if not labels_path.is_file():
        raise SourceError(f"{directory}: no labels/combined_windows.json (is it a NAB directory?)")
    try:
        labels = orjson.loads(labels_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{labels_path}: not JSON ({exc})") from None
    if not isinstance(labels, dict):
        raise SourceError(f"{labels_path}: expected an object of file -> windows")
    series = []
    for name in sorted(labels):
        path = directory / "data" / name
        if not path.is_file():
            continue
        times: list[datetime] = []
        values: list[float] = []
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for line, row in enumerate(reader, start=2):
                if len(row) < 2:
                    raise SourceError(f"{path}:{line}: expected timestamp,value")
                times.append(_time(row[0], f"{path}:{line}"))
                try:
                    values.append(float(row[1]))
                except ValueError:
                    raise SourceError(f"{path}:{line}: value {row[1]!r} is not a number") from None
        if not times:
            continue
        windows = [
            (_time(str(start), str(labels_path)), _time(str(end), str(labels_path)))
            for start, end in labels[name]
        ]
        series.append(NabSeries(name, times, values, windows))
    if not series:
        raise SourceError(f"{directory}: no labelled data files under data/")
    return series


@dataclass(frozen=True, slots=True)
class FileScore:
    name: str
    raw: float
    windows: int
    detected: int
    false_positives: int
    detections: int

    @property
    def null(self) -> float:
        return -FN_WEIGHT * self.windows

    @property
    def perfect(self) -> float:
        return TP_WEIGHT * self.windows


def score_file(series: NabSeries, detections: Sequence[datetime]) -> FileScore:
    """The raw standard-profile score of one file's detections (module docstring)."""
    times = series.times
    rows = len(times)
    probation = min(math.floor(PROBATION * rows), PROBATION * 5000)
    spans = []
    for start, end in series.windows:
        left = bisect.bisect_left(times, start)
        right = bisect.bisect_right(times, end) - 1
        if right >= left:
            spans.append((left, right))
    best: dict[int, float] = {}
    fp_total = 0.0
    false_positives = 0
    counted = 0
    for index in sorted({bisect.bisect_left(times, d) for d in detections}):
        if index >= rows or index < probation:
            continue
        counted += 1
        inside = next((k for k, (lo, hi) in enumerate(spans) if lo <= index <= hi), None)
        if inside is not None:
            left, right = spans[inside]
            width = right - left + 1
            value = scaled_sigmoid(-(right - index + 1) / width) * TP_WEIGHT / MAX_TP
            best[inside] = max(best.get(inside, -math.inf), value)
            continue
        before = [span for span in spans if span[1] < index]
        if before:
            left, right = before[-1]
            position = abs(right - index) / max(right - left, 1)
            fp_total += scaled_sigmoid(position) * FP_WEIGHT
        else:
            fp_total += -1.0 * FP_WEIGHT
        false_positives += 1
    raw = sum(best.values()) - FN_WEIGHT * (len(spans) - len(best)) + fp_total
    return FileScore(series.name, raw, len(spans), len(best), false_positives, counted)


def normalized(scores: Sequence[FileScore]) -> float:
    """100 * (raw - null) / (perfect - null) over the files together."""
    raw = sum(s.raw for s in scores)
    null = sum(s.null for s in scores)
    perfect = sum(s.perfect for s in scores)
    return 100.0 * (raw - null) / (perfect - null) if perfect > null else 0.0
