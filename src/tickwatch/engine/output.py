"""What the engine returns: columns (`ColumnarOutput`) and, for row callers, `EngineOutput`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from tickwatch.clock import from_micros
from tickwatch.engine.batch import ASSET_TYPES
from tickwatch.engine.detectors import Scores
from tickwatch.engine.features import WindowColumns
from tickwatch.model import Anomaly, Feature, Rejected, Score, Severity, Window

F64 = npt.NDArray[np.float64]
_FEATURES = tuple(Feature)
_SEVERITIES = (None, Severity.LOW, Severity.MEDIUM, Severity.HIGH)


@dataclass(slots=True)
class EngineOutput:
    """Closed windows with their scores, anomalies, late ticks and counts, as rows."""

    windows: list[Window] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    late: list[Rejected] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0

    def extend(self, other: EngineOutput) -> None:
        self.windows.extend(other.windows)
        self.anomalies.extend(other.anomalies)
        self.late.extend(other.late)
        self.accepted += other.accepted
        self.duplicates += other.duplicates


@dataclass(slots=True)
class ColumnarOutput:
    """What one call produced, as columns; `to_engine_output` gives the same as rows."""

    windows: WindowColumns | None = None
    scores: Scores | None = None
    severity: npt.NDArray[np.int8] | None = None  # (3, G): 0 none, 1 low, 2 medium, 3 high
    late: list[Rejected] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    detected_at: datetime | None = None
    symbols: list[str] = field(default_factory=list)  # names of the windows' symbol ids
    assets: npt.NDArray[np.int8] | None = None  # asset code of each symbol id
    size: int = 0  # window size, microseconds

    @property
    def window_count(self) -> int:
        return 0 if self.windows is None else len(self.windows.sym)

    @property
    def anomaly_count(self) -> int:
        return 0 if self.severity is None else int(np.count_nonzero(self.severity))

    def to_engine_output(self) -> EngineOutput:
        out = EngineOutput(late=self.late, accepted=self.accepted, duplicates=self.duplicates)
        w, s = self.windows, self.scores
        if w is None or s is None or self.assets is None:
            return out
        opens, highs, lows, closes, counts = (
            a.tolist() for a in (w.open, w.high, w.low, w.close, w.tick_count)
        )
        returns = w.price_return_pct.tolist()  # never NaN: a valid open is positive
        volumes, vwaps, volatility = (_nullable(a) for a in (w.volume, w.vwap, w.volatility))
        per_feature = [
            list(map(Score, *(_nullable(a[k]) for a in (s.mean, s.std, s.z)))) for k in range(3)
        ]
        for i, (sym, start) in enumerate(zip(w.sym.tolist(), w.start.tolist(), strict=True)):
            out.windows.append(
                Window(
                    self.symbols[sym],
                    ASSET_TYPES[self.assets[sym]],
                    from_micros(start),
                    from_micros(start + self.size),
                    opens[i],
                    highs[i],
                    lows[i],
                    closes[i],
                    volumes[i],
                    counts[i],
                    vwaps[i],
                    returns[i],
                    volatility[i],
                    dict(zip(_FEATURES, (p[i] for p in per_feature), strict=True)),
                )
            )
        out.anomalies = self.anomalies()
        return out

    def anomalies(self) -> list[Anomaly]:
        """The anomaly rows alone (window by window, features in `Feature` order), without
        building a `Window` per window: the replay's sinks take the windows as columns."""
        w, s = self.windows, self.scores
        if w is None or s is None or self.severity is None or self.assets is None:
            return []
        values = w.features()
        found = []
        for i, k in zip(*np.nonzero(self.severity.T), strict=True):
            assert self.detected_at is not None
            sym, start = int(w.sym[i]), int(w.start[i])
            found.append(
                Anomaly(
                    self.symbols[sym],
                    ASSET_TYPES[self.assets[sym]],
                    from_micros(start),
                    from_micros(start + self.size),
                    _FEATURES[k].anomaly_type,
                    float(values[k, i]),
                    float(s.mean[k, i]),
                    float(s.std[k, i]),
                    float(s.z[k, i]),
                    _SEVERITIES[self.severity[k, i]],  # type: ignore[arg-type]
                    self.detected_at,
                )
            )
        return found


def _nullable(values: F64) -> list[float | None]:
    listed: list[float | None] = np.where(np.isnan(values), None, values).tolist()  # type: ignore[call-overload]
    return listed
