"""Alert episodes for the API and the dashboard: what a person reads (DESIGN.md "Alerts").

An episode (a row of `alerts`) groups the anomalous windows of one symbol that belong together;
the per-window anomalies stay as they are and still mark the charts. A range selects the
episodes that overlap it: opened before its end and not closed before its start (an episode's
last window is `last_window_start`). Newest opening first; pages by keyset cursor
(`opened_at`, `alert_id`), since episodes open while a client pages.

An episode's windows are the stored windows of its symbol from its first to its last window,
each with its three z-scores and the anomaly types detected in it; at most `MAX_WINDOWS`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, and_, func, or_, select

from tickwatch.store.alert_rows import alerts
from tickwatch.store.sql import clean_market_data, market_anomalies
from tickwatch.web import paging
from tickwatch.web.models import AlertOut, AlertPage, EpisodeWindow
from tickwatch.web.queries import Span

MAX_WINDOWS = 1000
KINDS = ("market", "data_fault")


def alert_out(row: dict[str, object]) -> AlertOut:
    features = str(row["features"] or "")
    direction = str(row["direction"] or "")
    return AlertOut.model_validate(
        {
            **row,
            "features": [f for f in features.split(",") if f],
            "direction": dict(p.split(":", 1) for p in direction.split(",") if ":" in p),
        }
    )


def alert_page(
    engine: Engine,
    span: Span,
    symbols: Sequence[str] = (),
    kinds: Sequence[str] = (),
    severities: Sequence[str] = (),
    open_only: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> AlertPage:
    t = alerts
    where = []
    if span.end is not None:
        where.append(t.c.opened_at < span.end)
    if span.start is not None:
        where.append(or_(t.c.closed_at.is_(None), t.c.last_window_start >= span.start))
    if symbols:
        where.append(t.c.symbol.in_(symbols))
    if kinds:
        where.append(t.c.kind.in_(kinds))
    if severities:
        where.append(t.c.peak_severity.in_(severities))
    if open_only:
        where.append(t.c.closed_at.is_(None))
    condition = and_(True, *where)
    query = select(t).where(condition).order_by(t.c.opened_at.desc(), t.c.alert_id)
    if cursor is not None:
        opened, alert_id = paging.decode(cursor, (datetime, str))
        query = query.where(
            or_(t.c.opened_at < opened, and_(t.c.opened_at == opened, t.c.alert_id > alert_id))
        )
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(t).where(condition)).scalar_one()
        rows = conn.execute(query.limit(limit + 1)).all()
    items = [alert_out(dict(r._mapping)) for r in rows[:limit]]
    last = items[-1] if len(rows) > limit else None
    return AlertPage(
        total=int(total),
        limit=limit,
        items=items,
        next_cursor=None
        if last is None
        else paging.encode(last.opened_at.isoformat(), last.alert_id),
    )


def episode_windows(engine: Engine, alert_id: str) -> list[EpisodeWindow] | None:
    """The windows of one episode, oldest first; None when there is no such alert."""
    with engine.connect() as conn:
        alert = conn.execute(select(alerts).where(alerts.c.alert_id == alert_id)).first()
        if alert is None:
            return None
        c, a = clean_market_data, market_anomalies
        span = (c.c.window_start >= alert.opened_at, c.c.window_start <= alert.last_window_start)
        rows = conn.execute(
            select(c)
            .where(c.c.symbol == alert.symbol, *span)
            .order_by(c.c.window_start)
            .limit(MAX_WINDOWS)
        ).all()
        flagged = conn.execute(
            select(a.c.window_start, a.c.anomaly_type).where(
                a.c.symbol == alert.symbol,
                a.c.window_start >= alert.opened_at,
                a.c.window_start <= alert.last_window_start,
            )
        ).all()
    kinds: dict[datetime, list[str]] = defaultdict(list)
    for start, kind in flagged:
        kinds[start].append(kind)
    return [
        EpisodeWindow(
            **{k: r._mapping[k] for k in EpisodeWindow.model_fields if k in r._mapping},
            anomalies=sorted(kinds.get(r.window_start, [])),
        )
        for r in rows
    ]
