"""Drill-down of one alert episode: its symbol around that moment, and why it fired.

The windows of the alert's symbol from `CONTEXT` before its first window to `CONTEXT` after its
last (at most `MAX_WINDOWS`), each with the return baseline (mean and sample deviation of the
previous windows, DESIGN.md "Baseline and score") and whether it belongs to the episode; and
one reason per anomaly detected in the episode's windows: the feature, its value with its unit,
the baseline it was scored against, z, and how rare such a z is for this symbol (how many of
its scored windows were at least as far out, this one included).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select

from tickwatch.model import AnomalyType, AssetType, Feature
from tickwatch.store.alert_rows import alerts
from tickwatch.store.sql import clean_market_data, market_anomalies
from tickwatch.web.alerts import alert_out
from tickwatch.web.models import Drill, DrillWindow, Reason

CONTEXT = timedelta(hours=1)
MAX_WINDOWS = 1000
_FEATURE_OF = {feature.anomaly_type.value: feature for feature in Feature}


def unit_of(feature: Feature, asset_type: str) -> str:
    if feature is Feature.PRICE_RETURN:
        return "%"
    if feature is Feature.VOLUME:
        return "shares" if asset_type == AssetType.STOCK.value else "units"
    return "USD"  # volatility: the deviation of prices, in the price's currency


def drill(engine: Engine, alert_id: str, window_minutes: int) -> Drill | None:
    """The drill-down of alert `alert_id`; None when there is no such alert."""
    c, a = clean_market_data, market_anomalies
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
        if row is None:
            return None
        alert = alert_out(dict(row._mapping))
        first, last = alert.opened_at, alert.last_window_start
        windows = conn.execute(
            select(c)
            .where(
                c.c.symbol == alert.symbol,
                c.c.window_start >= first - CONTEXT,
                c.c.window_start <= last + CONTEXT,
            )
            .order_by(c.c.window_start)
            .limit(MAX_WINDOWS)
        ).all()
        fired = conn.execute(
            select(a)
            .where(a.c.symbol == alert.symbol, a.c.window_start >= first, a.c.window_start <= last)
            .order_by(a.c.window_start, a.c.anomaly_type)
        ).all()
        reasons = []
        for anomaly in fired:
            feature = _FEATURE_OF[AnomalyType(anomaly.anomaly_type).value]
            z = c.c[f"{feature.value}_z"]
            mine = c.c.symbol == alert.symbol
            as_extreme, scored = conn.execute(
                select(
                    func.count().filter(func.abs(z) >= abs(anomaly.z_score)), func.count(z)
                ).where(mine)
            ).one()
            reasons.append(
                Reason(
                    window_start=anomaly.window_start,
                    feature=feature.value,
                    anomaly_type=anomaly.anomaly_type,
                    value=anomaly.value,
                    unit=unit_of(feature, alert.asset_type),
                    mean=anomaly.mean,
                    std=anomaly.std,
                    z_score=anomaly.z_score,
                    severity=anomaly.severity,
                    as_extreme=as_extreme,
                    scored=scored,
                )
            )
    return Drill(
        alert=alert,
        window_minutes=window_minutes,
        windows=[
            DrillWindow(
                **{k: w._mapping[k] for k in DrillWindow.model_fields if k in w._mapping},
                in_episode=first <= w.window_start <= last,
            )
            for w in windows
        ],
        reasons=reasons,
    )
