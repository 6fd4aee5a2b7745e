"""The oracle engine: DESIGN.md's definitions one Tick at a time, the simplest way.

The production engine (`tickwatch.engine.columnar`) computes the same per batch with arrays;
the tests compare the two. Windows of one symbol close in order, so each is scored against
exactly the windows before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from tests.oracle.detectors import Detector, SeriesDetector, make_detector
from tests.oracle.features import summarize
from tests.oracle.windows import ClosedWindow, WindowAssembler
from tickwatch.engine import EngineConfig, EngineOutput
from tickwatch.model import Anomaly, AssetType, Feature, Rejected, Tick, Window, severity_of
from tickwatch.records import asset_conflict, tick_payload


class Engine:
    def __init__(
        self,
        config: EngineConfig,
        clock: Callable[[], datetime],
        detector: Detector | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.detector = detector or make_detector(
            config.detector, config.lookback, config.min_history
        )
        self.assembler = WindowAssembler(config.window, config.allowed_lateness, config.lookback)
        self._series: dict[tuple[str, Feature], SeriesDetector] = {}

    def process(self, ticks: Iterable[Tick]) -> EngineOutput:
        out = EngineOutput()
        for tick in ticks:
            state = self.assembler.symbols.get(tick.symbol)
            if state is not None and state.asset_type is not tick.asset_type:
                out.late.append(asset_conflict(tick, state.asset_type))
                continue
            added = self.assembler.add(tick)
            if added.duplicate:
                out.duplicates += 1
            elif added.late_reason is not None:
                out.late.append(
                    Rejected(
                        "late",
                        added.late_reason,
                        tick_payload(tick),
                        tick.source,
                        tick.symbol,
                        tick.ingest_time,
                    )
                )
            else:
                out.accepted += 1
            for closed in added.closed:
                self._score(closed, out)
        return out

    def advance(self, watermarks: dict[str, datetime]) -> EngineOutput:
        """Raise the watermark of each symbol (see `WindowAssembler.advance`)."""
        out = EngineOutput()
        for symbol, watermark in watermarks.items():
            for closed in self.assembler.advance(symbol, watermark):
                self._score(closed, out)
        return out

    def flush(self) -> EngineOutput:
        """Close every open window, as at the end of a replay."""
        out = EngineOutput()
        for closed in self.assembler.close_all():
            self._score(closed, out)
        return out

    def restore(self, history: Iterable[Window]) -> None:
        """Rebuild baselines from stored windows (oldest first) after a restart."""
        last: dict[str, Window] = {}
        for window in history:
            for feature in Feature:
                self._series_for(window.symbol, window.asset_type, feature).learn_one(
                    window.feature(feature), window.window_start
                )
            last[window.symbol] = window
        for symbol, window in last.items():
            self.assembler.restore(symbol, window.asset_type, window.window_end)

    def _series_for(self, symbol: str, asset_type: AssetType, feature: Feature) -> SeriesDetector:
        key = (symbol, feature)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.detector.series(symbol, asset_type, feature)
        return series

    def _score(self, closed: ClosedWindow, out: EngineOutput) -> None:
        window = summarize(closed.symbol, closed.asset_type, closed.start, closed.end, closed.ticks)
        config = self.config
        scores = {}
        detected_at: datetime | None = None
        for feature in Feature:
            series = self._series_for(closed.symbol, closed.asset_type, feature)
            value = window.feature(feature)
            score = series.score_one(value, window.window_start)
            series.learn_one(value, window.window_start)
            scores[feature] = score
            if score.z is None or value is None:
                continue
            severity = severity_of(
                score.z, config.z_threshold, config.severity_medium, config.severity_high
            )
            if severity is None:
                continue
            assert score.mean is not None and score.std is not None
            detected_at = detected_at or self.clock()
            out.anomalies.append(
                Anomaly(
                    symbol=window.symbol,
                    asset_type=window.asset_type,
                    window_start=window.window_start,
                    window_end=window.window_end,
                    anomaly_type=feature.anomaly_type,
                    value=value,
                    mean=score.mean,
                    std=score.std,
                    z_score=score.z,
                    severity=severity,
                    detected_at=detected_at,
                )
            )
        out.windows.append(replace(window, scores=scores))
