"""What every detector sees and returns: many windows' baselines at once, as arrays.

A detector judges G closed windows in one call. For window i and feature k (the order of
`model.Feature`: price return, volume, volatility):

- `values[k, i]` is the window's value (NaN when null: no volume, fewer than two observations);
- `history[:, k, i]` are the `lookback` values of the same symbol and feature just before it,
  oldest first (NaN where null or where the symbol has fewer windows), earlier windows of the
  same call included: windows come sorted by (symbol, start).

It returns the baseline (`mean`, `std`) and the standard score `z`, each (3, G), NaN where
there is none. The engine maps |z| to severity with the shared bands, so a detector only has
to produce a z comparable to a standard score. A detector that keeps state of its own (the
seasonal one) sees every window exactly once, in order, restores included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    F64 = npt.NDArray[np.float64]
    I32 = npt.NDArray[np.int32]
    I64 = npt.NDArray[np.int64]
    Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Baselines:
    """The windows to judge; arrays described in the module docstring."""

    history: F64  # (lookback, 3, G)
    values: F64  # (3, G)
    sym: I32  # (G,) the engine's symbol ids
    start: I64  # (G,) window starts, microseconds since the epoch
    stock: Mask  # (G,) True for a stock, False for crypto


@dataclass(frozen=True, slots=True)
class Scores:
    """(3, G) arrays; NaN where there is no baseline or no score."""

    mean: F64
    std: F64
    z: F64


class Detector(Protocol):
    name: str

    def score(self, baselines: Baselines) -> Scores: ...
