"""Store-side figures: row counts and a per-symbol summary of what the pipeline has stored."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, case, func, select

from tickwatch.ops.checks import OpsContext, Outcome, check, ok, warn
from tickwatch.store.sql import clean_market_data, dead_letters, market_anomalies


@check("row-counts", "pipeline", "rows of clean data and anomalies (total and last 24 h)")
def row_counts(ctx: OpsContext) -> Outcome:
    since = ctx.now - timedelta(hours=24)
    with ctx.engine.connect() as conn:
        figures = {
            "clean_rows": conn.execute(
                select(func.count()).select_from(clean_market_data)
            ).scalar_one(),
            "clean_rows_24h": conn.execute(
                select(func.count()).where(clean_market_data.c.window_end > since)
            ).scalar_one(),
            "anomalies": conn.execute(
                select(func.count()).select_from(market_anomalies)
            ).scalar_one(),
            "anomalies_24h": conn.execute(
                select(func.count()).where(market_anomalies.c.window_end > since)
            ).scalar_one(),
            "dead_letters": conn.execute(
                select(func.count()).select_from(dead_letters)
            ).scalar_one(),
        }
    message = (
        f"{figures['clean_rows']:,} clean rows ({figures['clean_rows_24h']:,} in 24 h), "
        f"{figures['anomalies']:,} anomalies ({figures['anomalies_24h']:,} in 24 h), "
        f"{figures['dead_letters']:,} dead letters"
    )
    if figures["clean_rows"] == 0:
        return warn(message + "; the pipeline has not stored a window yet", **figures)
    return ok(message, **figures)


@check("symbols", "pipeline", "per-symbol summary: newest window, close, windows and anomalies")
def symbols(ctx: OpsContext) -> Outcome:
    since = ctx.now - timedelta(hours=24)
    c, a = clean_market_data.c, market_anomalies.c
    windows_query = (
        select(
            c.symbol,
            c.asset_type,
            func.max(c.window_end),
            func.count(),
            func.sum(case((c.window_end > since, 1), else_=0)),  # sum(boolean): SQLite only
        )
        .group_by(c.symbol, c.asset_type)
        .order_by(c.symbol)
    )
    anomalies_query = select(a.symbol, func.count()).where(a.window_end > since).group_by(a.symbol)
    with ctx.engine.connect() as conn:
        rows = conn.execute(windows_query).all()
        anomalies: dict[str, int] = dict(conn.execute(anomalies_query).all())
        newest = (
            select(c.symbol.label("symbol"), func.max(c.window_end).label("end"))
            .group_by(c.symbol)
            .subquery()
        )
        latest_close: dict[str, float] = dict(
            conn.execute(
                select(c.symbol, c.close).join(
                    newest, and_(newest.c.symbol == c.symbol, newest.c.end == c.window_end)
                )
            ).all()
        )
    summary = {
        symbol: {
            "asset_type": kind,
            "newest_window_end": str(end),
            "close": latest_close.get(symbol),
            "windows": int(total),
            "windows_24h": int(recent or 0),
            "anomalies_24h": int(anomalies.get(symbol, 0)),
        }
        for symbol, kind, end, total, recent in rows
    }
    configured = [*ctx.settings.stock_symbols, *ctx.settings.crypto_ids]
    missing = [s for s in configured if s not in summary]
    if missing:
        return warn(
            f"{len(summary)} symbols stored; configured but never seen: {', '.join(missing)}",
            symbols=summary,
            missing=missing,
        )
    return ok(f"{len(summary)} symbols stored", symbols=summary)
