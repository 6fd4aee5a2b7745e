"""Windows and anomalies as plain value tuples, for bulk writers (SQLite executemany, Arrow).

`as_row` builds one dict per row, and the writers then look every value up again by name;
for the 100,000s of windows of a replay, a tuple in a fixed column order is several times
cheaper. The orders are the SQL tables' column orders (`store.sql` checks them against its
compiled statements); `time` turns each datetime into what the writer binds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from tickwatch.model import NO_SCORE, Anomaly, AnomalyType, AssetType, Feature, Severity, Window

_FEATURES = tuple(Feature)
TEXT: dict[Any, str] = {m: m.value for e in (AssetType, AnomalyType, Severity) for m in e}


def window_values(w: Window, time: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """`Window.as_row()`'s values in `clean_market_data`'s column order (not `as_row`'s),
    bound for the driver."""
    values: list[Any] = [
        w.symbol,
        time(w.window_start),
        time(w.window_end),
        TEXT[w.asset_type],
        w.open,
        w.high,
        w.low,
        w.close,
        w.volume,
        w.tick_count,
        w.vwap,
        w.price_return_pct,
        w.volatility,
    ]
    scores = w.scores
    for feature in _FEATURES:
        score = scores.get(feature, NO_SCORE)
        values += (score.mean, score.std, score.z)
    return tuple(values)


def anomaly_values(a: Anomaly, time: Callable[[datetime], Any]) -> tuple[Any, ...]:
    """`Anomaly.as_row()`'s values in `market_anomalies` column order, bound for the driver."""
    return (
        a.symbol,
        time(a.window_start),
        TEXT[a.anomaly_type],
        time(a.window_end),
        TEXT[a.asset_type],
        a.value,
        a.mean,
        a.std,
        a.z_score,
        TEXT[a.severity],
        time(a.detected_at),
    )
