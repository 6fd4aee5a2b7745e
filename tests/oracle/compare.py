"""The engine's output against the oracle's: exact where nothing is summed, close where it is.

Which windows and anomalies exist, counts, late ticks, OHLC and times must be equal. Sums
(volume, vwap, volatility, mean, std, z) may differ in rounding only: numpy and `math.fsum` add
in different orders. A sum of values up to S in magnitude is off by a few ulps of S, so each
float is compared with a tolerance of REL x the magnitude it was computed from (S for a mean
or std; S / std for a z, which divides by it), not of the result, which can cancel to near 0.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from tickwatch.engine import EngineConfig, EngineOutput
from tickwatch.model import Anomaly, Feature, Score, Window

REL = 1e-9


def close(got: float | None, want: float | None, scale: float) -> bool:
    if got is None or want is None:
        return got is want
    return abs(got - want) <= REL * max(abs(want), scale)


def assert_same_output(got: EngineOutput, want: EngineOutput, config: EngineConfig) -> None:
    assert got.late == want.late
    assert (got.accepted, got.duplicates) == (want.accepted, want.duplicates)
    key = lambda w: (w.symbol, w.window_start)  # noqa: E731
    got_windows, want_windows = sorted(got.windows, key=key), sorted(want.windows, key=key)
    assert [key(w) for w in got_windows] == [key(w) for w in want_windows]
    scales = _history_scales(want_windows, config.lookback)
    for g, w in zip(got_windows, want_windows, strict=True):
        _assert_window(g, w, scales)
    _assert_anomalies(got.anomalies, want.anomalies, scales, config)


def _assert_window(got: Window, want: Window, scales: dict[tuple[str, datetime, Feature], float]):
    exact = ("asset_type", "window_end", "open", "high", "low", "close", "tick_count")
    assert [getattr(got, n) for n in exact] == [getattr(want, n) for n in exact], want
    price = max(abs(want.high), abs(want.low))
    assert close(got.volume, want.volume, 0.0), (got.volume, want.volume)
    assert close(got.vwap, want.vwap, price), (got.vwap, want.vwap)
    assert close(got.price_return_pct, want.price_return_pct, 0.0)
    assert close(got.volatility, want.volatility, price), (got.volatility, want.volatility)
    for feature in Feature:
        scale = scales[(want.symbol, want.window_start, feature)]
        g, w = got.scores[feature], want.scores[feature]
        assert _same_score(g, w, scale), (want.symbol, want.window_start, feature, g, w)


def _same_score(got: Score, want: Score, scale: float) -> bool:
    if not (close(got.mean, want.mean, scale) and close(got.std, want.std, scale)):
        return False
    if got.z is None or want.z is None or got.z == want.z:  # equal infinities included
        return got.z == want.z
    assert want.std  # a z has a positive std
    return abs(got.z - want.z) <= REL * (abs(want.z) + 1) * scale / want.std


def _assert_anomalies(
    got: list[Anomaly],
    want: list[Anomaly],
    scales: dict[tuple[str, datetime, Feature], float],
    config: EngineConfig,
) -> None:
    """The same anomalies, but one whose |z| is within tolerance of a severity threshold may
    fall on either side of it."""
    key = lambda a: (a.symbol, a.window_start, a.anomaly_type)  # noqa: E731
    by_got, by_want = {key(a): a for a in got}, {key(a): a for a in want}
    features = {f.anomaly_type: f for f in Feature}
    bands = (config.z_threshold, config.severity_medium, config.severity_high)
    for k in by_got.keys() | by_want.keys():
        g, w = by_got.get(k), by_want.get(k)
        anomaly = w or g
        assert anomaly is not None
        scale = scales[(anomaly.symbol, anomaly.window_start, features[anomaly.anomaly_type])]
        if g is not None and w is not None:
            assert (g.asset_type, g.window_end, g.detected_at) == (
                w.asset_type,
                w.window_end,
                w.detected_at,
            )
            assert close(g.value, w.value, scale)
            assert _same_score(
                Score(g.mean, g.std, g.z_score), Score(w.mean, w.std, w.z_score), scale
            )
            if g.severity is w.severity:
                continue
        tolerance = REL * (abs(anomaly.z_score) + 1) * scale / anomaly.std
        assert any(abs(abs(anomaly.z_score) - b) <= tolerance for b in bands), (g, w)


def _history_scales(
    windows: list[Window], lookback: int
) -> dict[tuple[str, datetime, Feature], float]:
    """Largest |value| among each window's own value and the `lookback` before it."""
    scales: dict[tuple[str, datetime, Feature], float] = {}
    by_symbol: dict[str, list[Window]] = defaultdict(list)
    for w in windows:  # sorted by (symbol, start)
        by_symbol[w.symbol].append(w)
    for series in by_symbol.values():
        for i, w in enumerate(series):
            for feature in Feature:
                values = [x.feature(feature) for x in series[max(0, i - lookback) : i + 1]]
                scales[(w.symbol, w.window_start, feature)] = max(
                    (abs(v) for v in values if v is not None), default=0.0
                )
    return scales
