"""Scoring closed windows: each window's baseline history as a matrix, the detector's scores,
severity codes.

Windows come sorted by (symbol, start). A window's baseline is the `lookback` values of its
symbol before it, counting earlier windows of the same batch, so one call scores many windows
of one symbol exactly as one call per window would.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tickwatch.engine.detectors import Baselines, Detector, Scores

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
Mask = npt.NDArray[np.bool_]


def score(
    detector: Detector, sym: I32, start: I64, values: F64, history: F64, stock: Mask
) -> tuple[Scores, F64]:
    """Score windows sorted by (sym, start) against each symbol's previous windows.

    `values` is (3, G); `history[i]` is (3, lookback): the last `lookback` feature values of
    the i-th symbol of `np.unique(sym)`, oldest first, NaN for null or not yet seen. Returns
    the scores and those symbols' new histories (same order).
    """
    lookback = history.shape[-1]
    g = len(sym)
    symbols, first, counts = np.unique(sym, return_index=True, return_counts=True)
    # one row per symbol: its history, then its windows of this batch; each window's
    # baseline is the `lookback` cells before its own
    block = lookback + counts
    offsets = np.zeros(len(symbols), np.int64)
    np.cumsum(block[:-1], out=offsets[1:])
    flat = np.empty((3, int(block.sum())))
    flat[:, offsets[:, None] + np.arange(lookback)] = history.transpose(1, 0, 2)
    owner = np.repeat(np.arange(len(symbols)), counts)
    pos = offsets[owner] + lookback + np.arange(g) - first[owner]
    flat[:, pos] = values
    past = flat[:, np.arange(lookback)[:, None] + (pos - lookback)].transpose(1, 0, 2)
    new_history = flat[:, offsets[:, None] + counts[:, None] + np.arange(lookback)]
    scores = detector.score(Baselines(past, values, sym, start, stock))
    return scores, new_history.transpose(1, 0, 2)


def severity_codes(z: F64, threshold: float, medium: float, high: float) -> I8:
    """0 none, 1 low, 2 medium, 3 high (`model.severity_of` over arrays; NaN is none)."""
    magnitude = np.abs(np.nan_to_num(z, nan=0.0))
    codes = np.where(magnitude <= medium, 1, np.where(magnitude <= high, 2, 3))
    return np.where(magnitude <= threshold, 0, codes).astype(np.int8)
