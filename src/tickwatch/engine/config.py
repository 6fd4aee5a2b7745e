"""The engine's settings: window size, lateness, baseline length, severity bands, detector.

Built from `tickwatch.config.Settings.engine_config` where the runtime is assembled: the engine
itself reads no settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class EngineConfig:
    window: timedelta = timedelta(minutes=5)
    lookback: int = 20
    min_history: int = 5
    z_threshold: float = 3.0
    severity_medium: float = 4.0
    severity_high: float = 5.0
    allowed_lateness: timedelta = timedelta(minutes=10)
    detector: str = "zscore"
