"""The engine's settings: window size, lateness, baseline length, severity bands, detector."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tickwatch.config import Settings


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

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineConfig:
        return cls(
            window=settings.window,
            lookback=settings.lookback_windows,
            min_history=settings.min_history,
            z_threshold=settings.z_threshold,
            severity_medium=settings.severity_medium,
            severity_high=settings.severity_high,
            allowed_lateness=settings.allowed_lateness,
            detector=settings.detector,
        )
