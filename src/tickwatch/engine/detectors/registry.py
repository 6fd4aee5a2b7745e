"""The detectors by name: the one list the DETECTOR setting, the CLI and the engine use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from tickwatch.errors import ConfigError

if TYPE_CHECKING:
    from tickwatch.engine.detectors.base import Detector

DetectorName = Literal["zscore", "robust", "seasonal"]
DETECTORS: tuple[DetectorName, ...] = get_args(DetectorName)


def make_detector(name: str, lookback: int, min_history: int) -> Detector:
    """The detector called `name` (imported here: the names load without numpy)."""
    if name == "zscore":
        from tickwatch.engine.detectors.zscore import ZScoreDetector

        return ZScoreDetector(min_history)
    if name == "robust":
        from tickwatch.engine.detectors.robust import RobustDetector

        return RobustDetector(min_history)
    if name == "seasonal":
        from tickwatch.engine.detectors.seasonal import SeasonalDetector

        return SeasonalDetector(lookback, min_history)
    raise ConfigError(f"DETECTOR: unknown detector {name!r}; choose {', '.join(DETECTORS)}")
