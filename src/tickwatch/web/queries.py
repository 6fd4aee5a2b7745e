"""The read side of the SQL store, shared by the JSON API and the dashboard.

Time ranges are relative to the newest data in the store, not to the wall clock: simulated data
runs ahead of the clock and replays are historical, so "last 24h" means the 24 hours that end at
the newest `window_end` stored. Every query works on SQLite and PostgreSQL alike (SQLAlchemy Core
over `tickwatch.store.sql`'s tables); the summary's counts and the (rolling) relative volatility
are `aggregates`' SQL, the same that Grafana's panels compile.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from tickwatch.model import AnomalyType, Severity
from tickwatch.store.sql import clean_market_data, market_anomalies
from tickwatch.web import aggregates, paging
from tickwatch.web.models import (
    AnomalyOut,
    AnomalyPage,
    HourBucket,
    LatestPrice,
    Ranked,
    Summary,
    SymbolInfo,
    VolPoint,
    VolSeries,
    WindowOut,
    WindowPage,
    ZBin,
)

MAX_SERIES_POINTS = 2000  # per symbol in /api/volatility: longer series are thinned evenly
Z_BIN_LIMIT = aggregates.Z_BIN_LIMIT
_RANGE = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open time range [start, end); start None means from the beginning."""

    start: datetime | None
    end: datetime | None


MAX_TIMELINE = timedelta(days=366)  # the hourly timeline's longest span


def parse_range(text: str) -> timedelta | None:
    """'90m', '6h', '24h', '7d' to a duration; 'all' to None."""
    if text == "all":
        return None
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(f"range {text!r}: use a number with m, h or d (e.g. 24h, 7d) or 'all'")
    try:
        return timedelta(seconds=float(match[1]) * _UNIT[match[2]])
    except OverflowError:
        raise ValueError(f"range {text!r} is too long: use 'all' for everything") from None


def _in_span(column: Any, span: Span) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if span.start is not None:
        conditions.append(column >= span.start)
    if span.end is not None:
        conditions.append(column < span.end)
    return conditions


def z_bins(counts: Mapping[int, int], limit: int = Z_BIN_LIMIT) -> list[ZBin]:
    """The histogram of z-scores from their counts per bin (`aggregates.z_bins`: unit-wide
    bins of signed z from -limit to +limit, the end bins open), every bin listed.

    Anomalies have |z| > threshold, so the middle bins are empty by construction; they are kept
    so that the histogram's axis is symmetric and drops read left, spikes right. The end bins'
    `label` says they are open, so a z of 40 is never shown as "9".
    """

    def label(k: int) -> str:
        if k == limit - 1:
            return f"≥ {k}"
        if k == -limit:
            return f"< {k + 1}"
        return str(k)

    return [
        ZBin(low=k, high=k + 1, count=counts.get(k, 0), label=label(k))
        for k in range(-limit, limit)
    ]


def _pairs(rows: Iterable[Any]) -> dict[Any, int]:
    """(key, count) rows as a dict."""
    return {key: int(n) for key, n in rows}


def _per_hour(rows: Iterable[Any]) -> dict[datetime, Counter[str]]:
    """(time, metric, anomalies) rows of `aggregates.per_hour` as counts per hour."""
    hours: dict[datetime, Counter[str]] = defaultdict(Counter)
    for hour, metric, n in rows:
        hours[aggregates.hour_start(hour)][metric] = n
    return dict(hours)


class Reader:
    """Queries over one store; cheap to call per request."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def newest(self) -> datetime | None:
        """The newest window end in the store: the 'now' of every relative range."""
        with self.engine.connect() as conn:
            ends = [
                conn.execute(select(func.max(clean_market_data.c.window_end))).scalar_one(),
                conn.execute(select(func.max(market_anomalies.c.window_end))).scalar_one(),
            ]
        known = [e for e in ends if e is not None]
        return max(known) if known else None

    def span(
        self,
        length: timedelta | None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Span:
        """Explicit start/end win; otherwise `length` back from the newest data (or all)."""
        if start is not None or end is not None:
            return Span(start, end)
        newest = self.newest()
        if newest is None:
            return Span(None, None)
        # end is exclusive on window_start; the newest window starts before `newest`.
        if length is None or length > newest - datetime.min.replace(tzinfo=newest.tzinfo):
            return Span(None, newest)  # longer than the calendar goes back: everything
        return Span(newest - length, newest)

    def symbols(self) -> list[SymbolInfo]:
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for t in (market_anomalies, clean_market_data):
                query = select(t.c.symbol, func.max(t.c.asset_type)).group_by(t.c.symbol)
                found.update((symbol, asset) for symbol, asset in conn.execute(query))
        return [
            SymbolInfo(symbol=s, asset_type=found[s])
            for s in sorted(found, key=lambda s: (found[s], s))
        ]

    def anomalies(
        self,
        span: Span,
        symbols: Sequence[str] = (),
        types: Sequence[AnomalyType] = (),
        severities: Sequence[Severity] = (),
        limit: int = 100,
        offset: int = 0,
        cursor: str | None = None,
    ) -> AnomalyPage:
        """Newest window first (then highest |z|, symbol, type), with the total before paging.

        `cursor` (from the previous page's `next_cursor`) starts after that page's last row;
        `offset` then skips further rows (kept for old clients: it shifts as rows arrive).
        """
        t = market_anomalies
        where = _in_span(t.c.window_start, span)
        if symbols:
            where.append(t.c.symbol.in_(symbols))
        if types:
            where.append(t.c.anomaly_type.in_([x.value for x in types]))
        if severities:
            where.append(t.c.severity.in_([x.value for x in severities]))
        condition = and_(True, *where)
        size = func.abs(t.c.z_score)
        page = where.copy()
        if cursor is not None:
            start, z, symbol, kind = paging.decode(cursor, (datetime, float, str, str))
            page.append(
                or_(
                    t.c.window_start < start,
                    and_(
                        t.c.window_start == start,
                        or_(
                            size < z,
                            and_(
                                size == z,
                                or_(
                                    t.c.symbol > symbol,
                                    and_(t.c.symbol == symbol, t.c.anomaly_type > kind),
                                ),
                            ),
                        ),
                    ),
                )
            )
        query = (
            select(t)
            .where(and_(True, *page))
            .order_by(t.c.window_start.desc(), size.desc(), t.c.symbol, t.c.anomaly_type)
            .limit(limit + 1)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(t).where(condition)).scalar_one()
            rows = conn.execute(query).all()
        items = [AnomalyOut.model_validate(dict(r._mapping)) for r in rows[:limit]]
        last = items[-1] if len(rows) > limit else None
        next_cursor = (
            None
            if last is None
            else paging.encode(
                last.window_start.isoformat(), abs(last.z_score), last.symbol, last.anomaly_type
            )
        )
        return AnomalyPage(
            total=int(total), limit=limit, offset=offset, items=items, next_cursor=next_cursor
        )

    def last_detected(self) -> datetime | None:
        with self.engine.connect() as conn:
            latest: datetime | None = conn.execute(
                select(func.max(market_anomalies.c.detected_at))
            ).scalar_one()
        return latest

    def anomalies_detected_since(
        self, since: datetime | None, limit: int = 500
    ) -> list[AnomalyOut]:
        """Anomalies detected at or after `since` (all if None), oldest detection first."""
        t = market_anomalies
        query = select(t).order_by(t.c.detected_at, t.c.symbol, t.c.window_start).limit(limit)
        if since is not None:
            query = query.where(t.c.detected_at >= since)
        with self.engine.connect() as conn:
            return [AnomalyOut.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def windows(
        self, span: Span, symbols: Sequence[str] = (), limit: int = 5000, cursor: str | None = None
    ) -> WindowPage:
        """One page of windows in the range, oldest first (then by symbol), with the change in
        volume from the symbol's previous window in the range and relative volatility."""
        t = clean_market_data
        where = _in_span(t.c.window_start, span)
        if symbols:
            where.append(t.c.symbol.in_(symbols))
        before = func.lag(t.c.volume).over(partition_by=t.c.symbol, order_by=t.c.window_start)
        relative = aggregates.relative_volatility().label("volatility_pct")
        columns = select(t, before.label("previous_volume"), relative)
        ranged = columns.where(and_(True, *where)).subquery()
        query = select(ranged).order_by(ranged.c.window_start, ranged.c.symbol).limit(limit + 1)
        if cursor is not None:
            start, symbol = paging.decode(cursor, (datetime, str))
            query = query.where(
                or_(
                    ranged.c.window_start > start,
                    and_(ranged.c.window_start == start, ranged.c.symbol > symbol),
                )
            )
        out: list[WindowOut] = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                r = row._mapping
                volume, previous = r["volume"], r["previous_volume"]
                out.append(
                    WindowOut(
                        **{k: r[k] for k in WindowOut.model_fields if k in r},
                        volume_delta=volume - previous
                        if volume is not None and previous is not None
                        else None,
                    )
                )
        last = out[limit - 1] if len(out) > limit else None
        return WindowPage(
            limit=limit,
            items=out[:limit],
            next_cursor=None
            if last is None
            else paging.encode(last.window_start.isoformat(), last.symbol),
        )

    def latest_prices(self, span: Span) -> list[LatestPrice]:
        t = clean_market_data
        where = and_(True, *_in_span(t.c.window_start, span))
        order = t.c.window_start
        last = func.row_number().over(partition_by=t.c.symbol, order_by=order.desc()).label("last")
        first = func.row_number().over(partition_by=t.c.symbol, order_by=order).label("first")
        inner = select(
            t.c.symbol, t.c.asset_type, t.c.window_start, t.c.open, t.c.close, last, first
        )
        ranked = inner.where(where).subquery()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(ranked).where((ranked.c.last == 1) | (ranked.c.first == 1))
            ).all()
        opens = {r.symbol: r.open for r in rows if r.first == 1}
        prices = []
        for r in rows:
            if r.last != 1:
                continue
            base = opens.get(r.symbol)
            change = (r.close - base) / base * 100 if base else None
            prices.append(
                LatestPrice(
                    symbol=r.symbol,
                    asset_type=r.asset_type,
                    close=r.close,
                    window_start=r.window_start,
                    change_pct=change,
                )
            )
        return sorted(prices, key=lambda p: (p.asset_type, p.symbol))

    def summary(self, span: Span, symbols: Sequence[str] = ()) -> Summary:
        """The dashboard's counts (`aggregates`, the selects Grafana's panels compile too)."""
        a = market_anomalies
        where = _in_span(a.c.window_start, span)
        if symbols:
            where.append(a.c.symbol.in_(symbols))
        condition = and_(True, *where)
        c = clean_market_data
        cwhere = _in_span(c.c.window_start, span)
        if symbols:
            cwhere.append(c.c.symbol.in_(symbols))
        counts = select(func.count(), func.count(func.distinct(c.c.symbol))).where(
            and_(True, *cwhere)
        )
        hour = aggregates.hour_of(a.c.window_start)
        with self.engine.connect() as conn:
            windows, n_symbols = conn.execute(counts).one()
            ranked = conn.execute(aggregates.by_symbol(condition)).all()
            by_asset = conn.execute(aggregates.by_asset_severity(condition)).all()
            by_type: dict[str, int] = _pairs(conn.execute(aggregates.by_type(condition)))
            bins: dict[int, int] = _pairs(conn.execute(aggregates.z_bins(condition)))
            hourly = {
                kind: _per_hour(conn.execute(aggregates.per_hour(key, condition, hour)))
                for kind, key in (("severity", a.c.severity), ("type", a.c.anomaly_type))
            }
        by_severity = {k.value: sum(r._mapping[k.value] for r in by_asset) for k in Severity}
        return Summary(
            start=span.start,
            end=span.end,
            total=sum(by_severity.values()),
            high=by_severity[Severity.HIGH],
            windows=int(windows),
            symbols=int(n_symbols),
            by_type={k.value: by_type.get(k.value, 0) for k in AnomalyType},
            by_severity=by_severity,
            by_symbol=[Ranked.model_validate({**r._mapping, "total": r.anomalies}) for r in ranked],
            by_asset_severity={
                r.asset_type: {k.value: r._mapping[k.value] for k in Severity} for r in by_asset
            },
            hourly=self._hourly(span, hourly["severity"], hourly["type"]),
            z_histogram=z_bins(bins),
        )

    @staticmethod
    def _hourly(
        span: Span, severities: dict[datetime, Counter[str]], types: dict[datetime, Counter[str]]
    ) -> list[HourBucket]:
        """One bucket per hour from the first anomaly in the range (at most MAX_TIMELINE back)
        to its end, empty hours included (a gap reads as calm)."""
        if not severities and (span.start is None or span.end is None):
            return []
        first = span.start or min(severities)
        last = span.end or max(severities) + timedelta(hours=1)
        # a range of years ("99999d") must not build millions of empty buckets
        floor = datetime.min.replace(tzinfo=last.tzinfo)
        back = last - MAX_TIMELINE if last - floor > MAX_TIMELINE else floor  # year 1 is the floor
        first = max(first, back, min(severities, default=last))
        hour = first.replace(minute=0, second=0, microsecond=0)
        buckets = []
        while hour < last:
            by_severity, by_type = severities.get(hour, Counter()), types.get(hour, Counter())
            buckets.append(
                HourBucket(
                    hour=hour,
                    total=by_severity.total(),
                    by_severity={k.value: by_severity[k.value] for k in Severity},
                    by_type={k.value: by_type[k.value] for k in AnomalyType},
                )
            )
            hour += timedelta(hours=1)
        return buckets

    def volatility(self, span: Span, symbols: Sequence[str] = ()) -> list[VolSeries]:
        """Rolling relative volatility per symbol (`aggregates.rolling_volatility`), latest
        value too.

        Rows stream from the database; a symbol with more than MAX_SERIES_POINTS windows in the
        range keeps every k-th point (and always its latest), so neither the answer nor the
        memory behind it grows with the range.
        """
        t = clean_market_data
        where = _in_span(t.c.window_start, span)
        if symbols:
            where.append(t.c.symbol.in_(symbols))
        condition = and_(True, *where)
        counting = (
            select(t.c.symbol, func.max(t.c.asset_type), func.count())
            .where(condition)
            .group_by(t.c.symbol)
        )
        rolled = aggregates.rolling_volatility().label("value")
        query = (
            select(t.c.symbol, t.c.window_start, rolled)
            .where(condition)
            .order_by(t.c.symbol, t.c.window_start)
        )
        series: list[VolSeries] = []
        with self.engine.connect() as conn:
            sizes = {symbol: (asset, int(n)) for symbol, asset, n in conn.execute(counting)}
            rows = conn.execution_options(yield_per=5000).execute(query)
            for symbol, group in groupby(rows, key=lambda r: r.symbol):
                asset, size = sizes.get(symbol, ("", 1))
                stride = math.ceil(size / MAX_SERIES_POINTS)
                one = VolSeries(symbol=symbol, asset_type=asset, points=[], latest=None)
                skipped: VolPoint | None = None  # the newest point, while thinning left it out
                count = 0  # points so far (windows with a value)
                for r in group:
                    if r.value is None:
                        continue
                    value = float(r.value)
                    point = VolPoint(window_start=r.window_start, value=value)
                    if count % stride == 0:
                        one.points.append(point)
                        skipped = None
                    else:
                        skipped = point
                    count += 1
                    one.latest = value
                if skipped is not None:
                    one.points.append(skipped)
                series.append(one)
        return sorted(series, key=lambda s: (s.asset_type, s.symbol))
