"""The dashboards' aggregations, written once in SQLAlchemy: anomaly counts and volatility.

The web API runs them on SQLite or PostgreSQL (`queries.Reader.summary`); `tickwatch.grafana`
compiles the same selects for PostgreSQL, with Grafana's macros as the row filter and the hour
bucket, so the two dashboards cannot count differently. Every select takes `where`, which
anomalies to count (a range and symbols); the hourly ones also take `hour`, the bucket of a
window start (`hour_of` here, `$__timeGroup(window_start, 1h)` in Grafana).

Relative volatility is a window's sample standard deviation as a percentage of its close,
`volatility / close * 100`, so that a bitcoin and a cardano share one axis; the rolling figure
is its mean over the symbol's last `ROLLING_WINDOWS` windows in the range (one hour of 5-minute
bars; a window function, so SQLite 3.25+ or PostgreSQL), nulls left out of the mean.

Counts are `count(*)`, per severity `count(*) FILTER (WHERE severity = ...)` (SQLite 3.30+ and
PostgreSQL). z-scores fall in unit-wide bins `[k, k + 1)` for k in -limit .. limit - 1, the end
bins open (a z of 40 counts in the top bin): the bin is the largest k with z >= k, a CASE that
needs no floor function (SQLite builds may lack it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Float, Select, TextClause, case, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from tickwatch.model import Severity
from tickwatch.store.sql import clean_market_data, market_anomalies

A, C = market_anomalies, clean_market_data
ROLLING_WINDOWS = 12
Z_BIN_LIMIT = 10
SEVERITIES = (Severity.HIGH, Severity.MEDIUM, Severity.LOW)  # the dashboards' column order
Where = ColumnElement[bool] | TextClause  # Grafana's is its macros, as text


class hour_of(FunctionElement[Any]):  # lower case: it reads as the SQL function it renders
    """The UTC hour of a stored timestamp, a value to group by (see `hour_start`)."""

    type = DateTime()
    name = "hour_of"
    inherit_cache = True


@compiles(hour_of, "sqlite")
def _hour_on_sqlite(element: hour_of, compiler: SQLCompiler, **kw: Any) -> str:
    # the store keeps ISO 8601 UTC text on SQLite (store.sql.UtcDateTime): 'YYYY-MM-DDTHH'
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 13)"


@compiles(hour_of, "postgresql")
def _hour_on_postgresql(element: hour_of, compiler: SQLCompiler, **kw: Any) -> str:
    # in UTC whatever the session's TimeZone (an hour is not whole in every zone)
    return f"date_trunc('hour', {compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC')"


def hour_start(value: str | datetime) -> datetime:
    """A value of `hour_of` as an aware UTC datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(f"{value}:00:00+00:00")
    return value.replace(tzinfo=UTC)


def _count(label: str = "anomalies") -> ColumnElement[int]:
    return func.count().label(label)


def _per_severity() -> list[ColumnElement[int]]:
    return [func.count().filter(A.c.severity == s.value).label(s.value) for s in SEVERITIES]


def total(where: Where, severity: Severity | None = None) -> Select[Any]:
    """One row: how many anomalies (of `severity`, when given)."""
    label = "anomalies" if severity is None else severity.value
    query = select(_count(label)).select_from(A).where(where)
    return query if severity is None else query.where(A.c.severity == severity.value)


def by_type(where: Where) -> Select[Any]:
    """(type, anomalies) per anomaly type that has any, by type."""
    kind = A.c.anomaly_type
    return select(kind.label("type"), _count()).where(where).group_by(kind).order_by(kind)


def per_hour(key: ColumnElement[Any], where: Where, hour: Any) -> Select[Any]:
    """(time, metric, anomalies) per hour and value of `key` (a type or a severity)."""
    return (
        select(hour.label("time"), key.label("metric"), _count())
        .where(where)
        .group_by(hour, key)
        .order_by(hour, key)
    )


def by_symbol(where: Where, limit: int | None = None) -> Select[Any]:
    """(symbol, asset_type, anomalies, high, medium, low), most anomalies first, then most
    high ones, then by symbol."""
    anomalies, severities = _count(), _per_severity()
    high = severities[SEVERITIES.index(Severity.HIGH)]
    return (
        select(A.c.symbol, func.max(A.c.asset_type).label("asset_type"), anomalies, *severities)
        .where(where)
        .group_by(A.c.symbol)
        .order_by(anomalies.desc(), high.desc(), A.c.symbol)
        .limit(limit)
    )


def by_asset_severity(where: Where) -> Select[Any]:
    """(asset_type, high, medium, low) per asset type, by asset type."""
    kind = A.c.asset_type
    return select(kind, *_per_severity()).where(where).group_by(kind).order_by(kind)


def z_bins(where: Where, limit: int = Z_BIN_LIMIT) -> Select[Any]:
    """(bin, anomalies) per z-score bin that has any (see the module docstring)."""
    steps = [(A.c.z_score >= k, k) for k in range(limit - 1, -limit, -1)]
    binned = select(case(*steps, else_=-limit).label("bin")).where(where).subquery()
    return select(binned.c.bin, _count()).group_by(binned.c.bin).order_by(binned.c.bin)


def relative_volatility() -> ColumnElement[Any]:
    """A window's volatility in percent of its close (null without either)."""
    return C.c.volatility / func.nullif(C.c.close, 0, type_=Float) * 100


def rolling_volatility(windows: int = ROLLING_WINDOWS) -> ColumnElement[Any]:
    """The mean relative volatility of the symbol's last `windows` windows, this one included."""
    return func.avg(relative_volatility()).over(
        partition_by=C.c.symbol, order_by=C.c.window_start, rows=(-(windows - 1), 0)
    )
