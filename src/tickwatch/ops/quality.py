"""Data-quality checks over the stored results (the hourly `data_quality_monitoring` DAG).

Table checks look at the last 24 hours of `clean_market_data` and `market_anomalies` (by
window end), so an hourly run stays cheap however long the history grows. The store's schema
already forbids nulls and duplicate keys; these checks exist because tables can also be
created and filled by other writers (the compose deployment's init SQL, the Spark job over
JDBC) and because the Parquet lake has no constraints at all.

Price sanity, per window: every price positive; `low <= open, close <= high` (a tolerance of
1e-9 relative absorbs float rounding); `|price_return_pct| <= MAX_ABS_RETURN_PCT`. The first
two are impossible in real data (fail), the last is merely implausible (warn).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, case, func, or_, select

from tickwatch.model import CLEAN_MARKET_DATA
from tickwatch.ops.checks import (
    OpsContext,
    Outcome,
    Verdict,
    check,
    checks,
    fail,
    ok,
    run_check,
    warn,
    worst,
)
from tickwatch.store.parquet import KEYS, RAW_TICKS, unreadable_files
from tickwatch.store.sql import clean_market_data, market_anomalies

log = logging.getLogger(__name__)

CRITICAL_CLEAN = (
    "symbol",
    "asset_type",
    "window_start",
    "window_end",
    "open",
    "high",
    "low",
    "close",
    "tick_count",
    "price_return_pct",
)
CRITICAL_ANOMALY = ("symbol", "window_start", "anomaly_type", "value", "z_score", "severity")
LAKE_DAYS = 2  # lake partitions (UTC days) the lake checks read
MANY_FILES = 500  # files in one partition before compaction is overdue
EPS = 1e-9
STALE_REFERENCE = timedelta(hours=1)  # newest data older than this: messages name the span


def reference(ctx: OpsContext) -> datetime:
    """The moment the quality checks look back from: `ctx.now`, or the end of the newest
    stored window when that is earlier. A replayed or old store (last week's file, a stopped
    run) is judged on its own last 24 hours instead of on an empty span of the wall clock;
    whether the data is recent is the freshness check's question, not these."""
    with ctx.engine.connect() as conn:
        newest = conn.execute(select(func.max(clean_market_data.c.window_end))).scalar_one()
    if newest is None:
        return ctx.now
    if isinstance(newest, str):  # SQLite without the column type's processing
        newest = datetime.fromisoformat(newest)
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=UTC)
    newest_end: datetime = newest.astimezone(UTC)
    return min(ctx.now, newest_end)


def _since(ctx: OpsContext) -> Any:
    return reference(ctx) - timedelta(hours=24)


def _span(ctx: OpsContext) -> str:
    """'24 h' against the wall clock, or which 24 h when judged against older data."""
    ref = reference(ctx)
    if ctx.now - ref <= STALE_REFERENCE:
        return "the last 24 h"
    return f"the 24 h before the store's newest window ({ref:%Y-%m-%d %H:%M} UTC)"


def _nothing_to_judge(ctx: OpsContext, what: str, **figures: Any) -> Outcome:
    return warn(
        f"no windows in {_span(ctx)} to judge{what}: is the pipeline writing to "
        f"{ctx.settings.data_dir}?",
        **figures,
    )


def _window_count(ctx: OpsContext) -> int:
    with ctx.engine.connect() as conn:
        query = select(func.count()).where(clean_market_data.c.window_end > _since(ctx))
        return int(conn.execute(query).scalar_one())


def _lake_days(ctx: OpsContext) -> list[str]:
    ref = reference(ctx)
    days = [(ref - timedelta(days=n)).date().isoformat() for n in range(LAKE_DAYS)]
    folder = ctx.lake_root / CLEAN_MARKET_DATA
    return [d for d in days if (folder / f"date={d}").is_dir()]


def _lake_table(ctx: OpsContext) -> Any:
    """Every clean row of the recent lake partitions, duplicates included (no dedup)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [
        pq.read_table(f)
        for day in _lake_days(ctx)
        for f in sorted((ctx.lake_root / CLEAN_MARKET_DATA / f"date={day}").glob("*.parquet"))
    ]
    return pa.concat_tables(parts) if parts else None


def _lake_rows(ctx: OpsContext) -> int:
    lake = _lake_table(ctx)
    return 0 if lake is None else int(lake.num_rows)


def _null_counts(ctx: OpsContext) -> dict[str, int]:
    since = _since(ctx)
    counts: dict[str, int] = {}
    tables = ((clean_market_data, CRITICAL_CLEAN), (market_anomalies, CRITICAL_ANOMALY))
    with ctx.engine.connect() as conn:
        for table, columns in tables:
            query = select(
                *(
                    func.sum(case((table.c[col].is_(None), 1), else_=0)).label(col)
                    for col in columns
                )
            ).where(or_(table.c.window_end > since, table.c.window_end.is_(None)))
            row = conn.execute(query).one()
            counts.update({f"{table.name}.{col}": int(n) for col, n in row._mapping.items() if n})
    lake = _lake_table(ctx)
    if lake is not None:
        for col in CRITICAL_CLEAN:
            if n := lake.column(col).null_count:
                counts[f"lake.{col}"] = n
    return counts


@check("nulls", "quality", "no nulls in critical columns (store and lake)")
def nulls(ctx: OpsContext) -> Outcome:
    counts = _null_counts(ctx)
    if counts:
        listed = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        return fail(
            f"nulls in critical columns: {listed}; find the writer that produced them", nulls=counts
        )
    if not _window_count(ctx) and not _lake_rows(ctx):
        return _nothing_to_judge(ctx, " for nulls", nulls=counts)
    return ok("no nulls in critical columns", nulls=counts)


@check("duplicates", "quality", "one row per (symbol, window_start) in the store and the lake")
def duplicates(ctx: OpsContext) -> Outcome:
    c = clean_market_data.c
    groups = (
        select(c.symbol, c.window_start, func.count().label("n"))
        .where(c.window_end > _since(ctx))
        .group_by(c.symbol, c.window_start)
        .having(func.count() > 1)
        .subquery()
    )
    with ctx.engine.connect() as conn:
        store_groups, store_extra = conn.execute(
            select(func.count(), func.coalesce(func.sum(groups.c.n - 1), 0))
        ).one()
        examples = [
            f"{symbol}@{start}" for symbol, start, _n in conn.execute(select(groups).limit(3)).all()
        ]
    lake_extra = 0
    lake = _lake_table(ctx)
    if lake is not None and lake.num_rows:
        keys = lake.group_by(list(KEYS[CLEAN_MARKET_DATA])).aggregate([])
        lake_extra = lake.num_rows - keys.num_rows
    figures = {
        "store_duplicate_groups": int(store_groups),
        "store_extra_rows": int(store_extra),
        "lake_extra_rows": lake_extra,
    }
    if store_groups:
        return fail(
            f"{store_groups} (symbol, window_start) group(s) stored more than once "
            f"(e.g. {', '.join(examples)}): the table lacks its primary key; deduplicate it and "
            "add the key (see store/sql.py)",
            **figures,
            examples=examples,
        )
    if lake_extra:
        return warn(
            f"{lake_extra} repeated clean row(s) in the lake's last {LAKE_DAYS} days (a replay or "
            "restart); readers that do not dedup will double count until compaction",
            **figures,
        )
    if not _window_count(ctx) and not (lake is not None and lake.num_rows):
        return _nothing_to_judge(ctx, " for duplicates", **figures)
    return ok("no duplicate windows", **figures)


@check("price-sanity", "quality", "positive, consistent OHLC prices and plausible returns")
def price_sanity(ctx: OpsContext) -> Outcome:
    c = clean_market_data.c
    recent = c.window_end > _since(ctx)
    non_positive = or_(c.open <= 0, c.high <= 0, c.low <= 0, c.close <= 0)
    tol = func.abs(c.high) * EPS
    inconsistent = or_(
        c.high < c.low - tol,
        c.open > c.high + tol,
        c.open < c.low - tol,
        c.close > c.high + tol,
        c.close < c.low - tol,
    )
    absurd = func.abs(c.price_return_pct) > ctx.settings.max_abs_return_pct

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    with ctx.engine.connect() as conn:
        total, bad_price, bad_ohlc, bad_return = conn.execute(
            select(func.count(), count(non_positive), count(inconsistent), count(absurd)).where(
                recent
            )
        ).one()
        examples = [
            f"{symbol}@{start} return {ret:+.1f}%"
            for symbol, start, ret in conn.execute(
                select(c.symbol, c.window_start, c.price_return_pct)
                .where(and_(recent, absurd))
                .limit(3)
            ).all()
        ]
    figures = {
        "windows": int(total),
        "non_positive": int(bad_price or 0),
        "inconsistent_ohlc": int(bad_ohlc or 0),
        "absurd_returns": int(bad_return or 0),
    }
    if figures["non_positive"] or figures["inconsistent_ohlc"]:
        return fail(
            f"{figures['non_positive']} window(s) with a non-positive price and "
            f"{figures['inconsistent_ohlc']} with open/close outside [low, high]: a source or "
            "parser is broken; look at the dead letters and the source's raw ticks",
            **figures,
        )
    if figures["absurd_returns"]:
        return warn(
            f"{figures['absurd_returns']} window(s) moved more than "
            f"{ctx.settings.max_abs_return_pct:g}% ({', '.join(examples)}): confirm against "
            "another source before trusting them",
            **figures,
        )
    if not figures["windows"]:
        return _nothing_to_judge(ctx, "", **figures)
    return ok(f"{figures['windows']:,} windows in {_span(ctx)} have sane prices", **figures)


@check("anomaly-stats", "quality", "anomalies in 24 h by type and severity, and their rate")
def anomaly_stats(ctx: OpsContext) -> Outcome:
    """The rate is anomalies / (windows x 3 features). Under the z-score detector on normal
    data |z| > 3 has probability 0.27%, so a rate above 5% means a broken feed or detector."""
    a = market_anomalies.c
    since = _since(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(a.anomaly_type, a.severity, func.count(), func.avg(func.abs(a.z_score)))
            .where(a.window_end > since)
            .group_by(a.anomaly_type, a.severity)
        ).all()
        windows = conn.execute(
            select(func.count()).where(clean_market_data.c.window_end > since)
        ).scalar_one()
    by_type: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    weighted_z = 0.0
    for kind, severity, n, mean_z in rows:
        by_type[kind] += n
        by_severity[severity] += n
        weighted_z += float(mean_z) * n
    total = sum(by_type.values())
    rate = total / (windows * 3) if windows else 0.0
    figures = {
        "anomalies_24h": total,
        "by_type": dict(by_type),
        "by_severity": dict(by_severity),
        "mean_abs_z": round(weighted_z / total, 3) if total else None,
        "rate": round(rate, 5),
    }
    if not windows:
        return _nothing_to_judge(ctx, " for anomalies", **figures)
    message = (
        f"{total} anomalies in {_span(ctx)} ("
        + (", ".join(f"{k} {n}" for k, n in sorted(by_type.items())) or "none")
        + f"), {rate:.2%} of scored features"
    )
    if rate > 0.05:
        return warn(message + ": far above the ~0.3% of a calm market; check the feeds", **figures)
    return ok(message, **figures)


@check("rows-per-window", "quality", "rows per window over the last hour, missing symbols")
def rows_per_window(ctx: OpsContext) -> Outcome:
    c = clean_market_data.c
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(c.window_start, c.symbol).where(
                c.window_start >= reference(ctx) - timedelta(hours=1)
            )
        ).all()
    present: dict[str, set[str]] = {}
    for start, symbol in rows:
        present.setdefault(str(start), set()).add(symbol)
    active = set().union(*present.values()) if present else set()
    per_window = {start: len(symbols) for start, symbols in sorted(present.items())}
    gaps = {
        start: sorted(active - symbols) for start, symbols in present.items() if active - symbols
    }
    figures = {"rows_per_window": per_window, "symbols": len(active), "gaps": gaps}
    if not present:
        return warn("no window in the last hour (see the freshness check)", **figures)
    if gaps:
        missing = sorted({s for symbols in gaps.values() for s in symbols})
        return warn(
            f"{len(gaps)} of {len(per_window)} windows in the last hour lack symbol(s) "
            f"{', '.join(missing)}: a sparse feed or a lagging producer",
            **figures,
        )
    return ok(
        f"{len(per_window)} windows in the last hour, each with all {len(active)} symbols",
        **figures,
    )


@check("parquet", "quality", "Parquet lake output: every file readable, size and file count")
def parquet_output(ctx: OpsContext) -> Outcome:
    tables: dict[str, dict[str, int]] = {}
    crowded: list[str] = []
    for table in (RAW_TICKS, CLEAN_MARKET_DATA):
        folder = ctx.lake_root / table
        files = list(folder.rglob("*.parquet")) if folder.is_dir() else []
        tables[table] = {
            "files": len(files),
            "bytes": sum(f.stat().st_size for f in files),
            "partitions": len({f.parent for f in files}),
        }
        crowded += [
            str(p.relative_to(ctx.lake_root))
            for p in {f.parent for f in files}
            if sum(1 for _ in p.glob("*.parquet")) > MANY_FILES
        ]
    total_files = sum(t["files"] for t in tables.values())
    total_mb = sum(t["bytes"] for t in tables.values()) / 1e6
    message = f"{total_files:,} files, {total_mb:,.1f} MB in {ctx.lake_root}"
    if broken := unreadable_files(ctx.lake_root):
        named = "; ".join(f"{p.relative_to(ctx.lake_root)}: {why}" for p, why in broken[:5])
        return fail(
            f"{len(broken)} unreadable lake file(s) ({named}); the next compaction (end of a "
            "replay or run) moves them to lake/_quarantine",
            tables=tables,
            unreadable=[str(p) for p, _ in broken],
        )
    if not tables[CLEAN_MARKET_DATA]["files"]:
        return warn(
            f"no clean Parquet output in {ctx.lake_root}: is the lake writer running?",
            tables=tables,
        )
    if crowded:
        return warn(
            message + f"; over {MANY_FILES} files in {', '.join(crowded)}: compact", tables=tables
        )
    return ok(message, tables=tables)


@check("quality-report", "quality", "all quality checks, aggregated and saved as JSON")
def quality_report(ctx: OpsContext) -> Outcome:
    results = [run_check(c.name, ctx) for c in checks("quality") if c.name not in _NOT_IN_REPORT]
    verdict = worst(results)
    report = {
        "generated_at": ctx.now.isoformat(),
        "verdict": verdict.value,
        "checks": [r.as_dict() for r in results],
    }
    ctx.reports_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.reports_dir / f"quality-{ctx.now:%Y%m%dT%H%M%SZ}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2, default=str))
    counts = Counter(r.verdict.value for r in results)
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    bad = [f"{r.name}: {r.message}" for r in results if r.verdict is not Verdict.OK]
    message = f"{summary}; report {path}" + (f" | {' | '.join(bad)}" if bad else "")
    return (
        verdict,
        message,
        {"report": str(path), "verdicts": {r.name: r.verdict.value for r in results}},
    )


_NOT_IN_REPORT = {"quality-report", "checkpoints"}  # itself, and the one that deletes files
