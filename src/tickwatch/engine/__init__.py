"""The pure core: ticks in, windows and anomalies out. No I/O, no clock.

`columnar` assembles windows (watermark, late, duplicates), `features` computes their OHLCV
and features, `scoring` builds each window's baseline history and asks the detector
(`detectors/`) for scores. `batch` is the input (TickBatch), `output` the results.

The names below load lazily, so settings and the CLI can read `DETECTORS` without numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tickwatch.engine.config import EngineConfig
from tickwatch.engine.detectors import DETECTORS, Detector, make_detector

if TYPE_CHECKING:
    from tickwatch.engine.columnar import ColumnarEngine, make_engine
    from tickwatch.engine.output import ColumnarOutput, EngineOutput

_LAZY = {
    "ColumnarEngine": "columnar",
    "make_engine": "columnar",
    "ColumnarOutput": "output",
    "EngineOutput": "output",
}

__all__ = [
    "DETECTORS",
    "ColumnarEngine",
    "ColumnarOutput",
    "Detector",
    "EngineConfig",
    "EngineOutput",
    "make_detector",
    "make_engine",
]


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'tickwatch.engine' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"tickwatch.engine.{_LAZY[name]}"), name)
