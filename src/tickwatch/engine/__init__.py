"""The pure core: ticks in, windows and anomalies out. No I/O, no clock."""

from tickwatch.engine.detectors import Detector, SeriesDetector, ZScoreDetector, make_detector
from tickwatch.engine.pipeline import Engine, EngineConfig, EngineOutput

__all__ = [
    "Detector",
    "Engine",
    "EngineConfig",
    "EngineOutput",
    "SeriesDetector",
    "ZScoreDetector",
    "make_detector",
]
