"""Detectors: one module per detector, each scoring a whole batch of windows at once.

`base` holds the protocol and its arrays, `registry` the names (the DETECTOR setting's values)
and `make_detector`; `zscore`, `robust` and `seasonal` are the detectors. Importing this
package loads no numpy, so the CLI's help can list the names.
"""

from tickwatch.engine.detectors.base import Baselines, Detector, Scores
from tickwatch.engine.detectors.registry import DETECTORS, DetectorName, make_detector

__all__ = ["DETECTORS", "Baselines", "Detector", "DetectorName", "Scores", "make_detector"]
