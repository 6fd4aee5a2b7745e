"""Pipeline health checks: is every part up, and is data flowing?

Distributed mode (a Kafka bootstrap is given) checks the broker, the four topics, the
producers by the age of the newest message in their raw topic, and the stream job by its
process and its checkpoint. Embedded mode has no broker: producers and the engine are tasks of
`tickwatch run`, judged by their supervised state when the checks run inside that process and
by the data they leave in the store otherwise.

**Freshness**: windows close on a watermark, `L` = ALLOWED_LATENESS after their end, so in a
healthy pipeline the newest stored window ends at `now - L` or at most one window earlier.
The staleness of an asset type is therefore `now - L - newest_window_end`, and it fails above
FRESHNESS_MINUTES. US stocks only trade 09:30-16:00 New York time on weekdays, so stale stock
data fails only when the market was open over the whole span that should have produced a
window (at `now - L` and at `now - L - FRESHNESS_MINUTES`); crypto trades around the clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.markets import market_open
from tickwatch.model import (
    CLEAN_MARKET_DATA,
    MARKET_ANOMALIES,
    RAW_CRYPTO_TICKS,
    RAW_STOCK_TICKS,
    AssetType,
)
from tickwatch.ops import probe
from tickwatch.ops.checks import OpsContext, Outcome, check, fail, ok, warn
from tickwatch.ops.restart import Launcher, launcher
from tickwatch.ops.stack import launcher as stack_launcher
from tickwatch.store.sql import clean_market_data

ALL_TOPICS = (RAW_STOCK_TICKS, RAW_CRYPTO_TICKS, CLEAN_MARKET_DATA, MARKET_ANOMALIES)


def _minutes(delta: timedelta) -> float:
    """An age in minutes, never negative: data stamped after `now` (a source or clock ahead)
    is as fresh as can be, not fresher."""
    return round(max(delta, timedelta(0)).total_seconds() / 60, 1)


def _broker_down(ctx: OpsContext, exc: Exception) -> Outcome:
    return fail(
        f"Kafka at {ctx.kafka_bootstrap} does not answer ({exc}); start the broker "
        "(scripts/kafka.sh start DIR) or fix KAFKA_BOOTSTRAP_SERVERS",
        bootstrap=ctx.kafka_bootstrap,
    )


@check("kafka", "pipeline", "Kafka broker responsive")
def kafka_broker(ctx: OpsContext) -> Outcome:
    if ctx.kafka_bootstrap is None:
        return ok("not used: embedded mode (in-process bus)", mode="embedded")
    from confluent_kafka import KafkaException  # the `kafka` extra

    try:
        info = probe.cluster(ctx.kafka_bootstrap)
    except KafkaException as exc:
        return _broker_down(ctx, exc)
    return ok(
        f"{info.brokers} broker(s) at {ctx.kafka_bootstrap}, {len(info.topics)} topics",
        brokers=info.brokers,
        topics=len(info.topics),
    )


@check("store", "pipeline", "PostgreSQL or SQLite accepting connections")
def store(ctx: OpsContext) -> Outcome:
    url = ctx.engine.url.render_as_string(hide_password=True)
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return fail(
            f"{ctx.engine.dialect.name} at {url} refuses connections: {cause}; start the "
            "database or fix STORE_URL",
            dialect=ctx.engine.dialect.name,
        )
    return ok(
        f"{ctx.engine.dialect.name} accepts connections ({url})", dialect=ctx.engine.dialect.name
    )


@check("topics", "pipeline", "all four Kafka topics exist")
def topics(ctx: OpsContext) -> Outcome:
    if ctx.kafka_bootstrap is None:
        return ok("not used: embedded mode (in-process bus)", mode="embedded")
    from confluent_kafka import KafkaException  # the `kafka` extra

    try:
        info = probe.cluster(ctx.kafka_bootstrap)
    except KafkaException as exc:
        return _broker_down(ctx, exc)
    wanted = [ctx.topic_prefix + name for name in ALL_TOPICS]
    missing = [name for name in wanted if name not in info.topics]
    partitions = {name: info.topics[name] for name in wanted if name in info.topics}
    if missing:
        return fail(
            f"missing topic(s) {', '.join(missing)}; a producer creates them on start, or "
            "create them with kafka-topics.sh --create",
            missing=missing,
            partitions=partitions,
        )
    return ok(f"all {len(wanted)} topics exist", partitions=partitions)


def _stock_expected(ctx: OpsContext) -> bool:
    """Whether the stock market was open over the span that should have produced a window."""
    lateness = ctx.settings.allowed_lateness
    span = timedelta(minutes=ctx.settings.freshness_minutes)
    return market_open(ctx.now - lateness) and market_open(ctx.now - lateness - span)


def _asset_configured(ctx: OpsContext, asset: AssetType) -> bool:
    symbols = ctx.settings.stock_symbols if asset is AssetType.STOCK else ctx.settings.crypto_ids
    return bool(symbols)


def _newest_window_end(ctx: OpsContext) -> dict[str, datetime]:
    query = select(
        clean_market_data.c.asset_type, func.max(clean_market_data.c.window_end)
    ).group_by(clean_market_data.c.asset_type)
    with ctx.engine.connect() as conn:
        rows = conn.execute(query).all()
    # SQLite hands back the ISO text of max(); the column type converts only plain columns
    return {
        kind: end if isinstance(end, datetime) else datetime.fromisoformat(end)
        for kind, end in rows
        if end is not None
    }


def _launcher(ctx: OpsContext) -> Launcher:
    """Who knows the processes: the local stack's own record (tickwatch stack up) first."""
    return stack_launcher(ctx.settings) or launcher(ctx.settings)


def _producer(ctx: OpsContext, asset: AssetType) -> Outcome:
    service = f"producer-{asset.value}"
    limit = timedelta(minutes=ctx.settings.freshness_minutes)
    closed_ok = asset is AssetType.STOCK and not _stock_expected(ctx)
    if not _asset_configured(ctx, asset):
        return ok(f"no {asset.value} symbols configured", configured=False)
    if ctx.kafka_bootstrap is None:
        return _embedded_producer(ctx, asset, closed_ok)
    topic = ctx.topic_prefix + asset.raw_topic
    from confluent_kafka import KafkaException  # the `kafka` extra

    try:
        info = probe.cluster(ctx.kafka_bootstrap)
        if topic not in info.topics:
            return fail(f"topic {topic} does not exist, so {service} cannot publish", topic=topic)
        newest = probe.last_message_time(ctx.kafka_bootstrap, topic, info.topics[topic])
    except KafkaException as exc:
        return _broker_down(ctx, exc)
    process = _launcher(ctx).alive(service)
    figures: dict[str, Any] = {"topic": topic, "process_alive": process}
    if newest is not None:
        figures["last_message_age_min"] = _minutes(ctx.now - newest)
    if process is False and not closed_ok:
        return fail(
            f"{service} is not running (its recorded process is gone); restart it", **figures
        )
    if newest is not None and ctx.now - newest <= limit:
        return ok(f"{service} published {figures['last_message_age_min']} min ago", **figures)
    if closed_ok:
        return ok(f"{service} is quiet and the US stock market is closed", **figures)
    age = "never" if newest is None else f"last {figures['last_message_age_min']} min ago"
    return fail(
        f"{service} published nothing to {topic} in {ctx.settings.freshness_minutes:g} min "
        f"({age}); restart it and read its log",
        **figures,
    )


def _embedded_producer(ctx: OpsContext, asset: AssetType, closed_ok: bool) -> Outcome:
    if ctx.tasks is not None:
        sources = {n: t for n, t in ctx.tasks.items() if n.startswith("source:")}
        down = [n for n, t in sources.items() if t.state == "backoff"]
        figures: dict[str, Any] = {n: t.state for n, t in sources.items()}
        if down:
            return fail(f"source task(s) {', '.join(down)} crashed and are backing off", **figures)
        if sources:
            return ok(f"{len(sources)} source task(s) alive", **figures)
    newest = _newest_window_end(ctx).get(asset.value)
    if newest is None:
        return warn(f"no {asset.value} windows stored yet; is `tickwatch run` running?")
    stale = ctx.now - ctx.settings.allowed_lateness - newest
    figures = {"staleness_min": _minutes(stale)}
    if stale <= timedelta(minutes=ctx.settings.freshness_minutes):
        return ok(f"{asset.value} data arrives (embedded producer)", **figures)
    if closed_ok:
        return ok(f"{asset.value} data is quiet and the US stock market is closed", **figures)
    return fail(f"no new {asset.value} window for {figures['staleness_min']} min", **figures)


@check("producer-stock", "pipeline", "stock producer alive (fresh messages or live task)")
def producer_stock(ctx: OpsContext) -> Outcome:
    return _producer(ctx, AssetType.STOCK)


@check("producer-crypto", "pipeline", "crypto producer alive (fresh messages or live task)")
def producer_crypto(ctx: OpsContext) -> Outcome:
    return _producer(ctx, AssetType.CRYPTO)


@check("stream-job", "pipeline", "the stream job (Spark or embedded engine) is running")
def stream_job(ctx: OpsContext) -> Outcome:
    if ctx.kafka_bootstrap is None:
        if ctx.tasks is None:
            return ok("embedded engine runs inside `tickwatch run`; see freshness", mode="embedded")
        engine = ctx.tasks.get("engine")
        if engine is None or engine.state != "running":
            state = "missing" if engine is None else engine.state
            return fail(f"embedded engine task is {state}", state=state)
        return ok("embedded engine task running", restarts=engine.restarts)
    return probe.stream_job_liveness(
        _launcher(ctx).alive("stream-job"), ctx.live_checkpoints, ctx.now
    )


@check("freshness", "pipeline", "a new window closed within FRESHNESS_MINUTES (market hours aware)")
def freshness(ctx: OpsContext) -> Outcome:
    limit = timedelta(minutes=ctx.settings.freshness_minutes)
    newest = _newest_window_end(ctx)
    figures: dict[str, Any] = {"stock_market_open": _stock_expected(ctx)}
    problems, notes = [], []
    for asset in AssetType:
        if not _asset_configured(ctx, asset):
            continue
        end = newest.get(asset.value)
        if end is not None:
            figures[f"{asset.value}_newest_window_end"] = end.isoformat()
            figures[f"{asset.value}_staleness_min"] = _minutes(
                ctx.now - ctx.settings.allowed_lateness - end
            )
        fresh = end is not None and ctx.now - ctx.settings.allowed_lateness - end <= limit
        if fresh:
            continue
        if asset is AssetType.STOCK and not _stock_expected(ctx):
            notes.append("stock market closed")
            continue
        problems.append(
            f"no new {asset.value} window for "
            + ("ever" if end is None else f"{figures[f'{asset.value}_staleness_min']} min")
        )
    if problems:
        return fail(
            "; ".join(problems) + f" (limit {ctx.settings.freshness_minutes:g} min): check the "
            "producers and the stream job",
            **figures,
        )
    return ok("data is fresh" + (f" ({', '.join(notes)})" if notes else ""), **figures)


@check("consumer-lag", "pipeline", "messages the consumers trail each raw topic by")
def consumer_lag(ctx: OpsContext) -> Outcome:
    """Lag = high watermark - committed position, summed over partitions, per raw topic.

    Positions come from the consumer group (CONSUMER_GROUP, the embedded engine reading Kafka)
    and from the live Spark checkpoints (Spark keeps its position there, not in a group).
    """
    if ctx.kafka_bootstrap is None:
        return ok("not used: embedded mode (in-process bus)", mode="embedded")
    bootstrap = ctx.kafka_bootstrap
    from confluent_kafka import KafkaException  # the `kafka` extra

    try:
        info = probe.cluster(bootstrap)
        positions: dict[str, dict[str, dict[int, int | None]]] = {}
        ends: dict[str, dict[int, tuple[int, int]]] = {}
        for topic in (ctx.topic_prefix + RAW_STOCK_TICKS, ctx.topic_prefix + RAW_CRYPTO_TICKS):
            if topic not in info.topics:
                continue
            ends[topic] = probe.end_offsets(bootstrap, topic, info.topics[topic])
            if ctx.consumer_group:
                positions.setdefault(f"group {ctx.consumer_group}", {})[topic] = (
                    probe.committed_offsets(
                        bootstrap, ctx.consumer_group, topic, info.topics[topic]
                    )
                )
    except KafkaException as exc:
        return _broker_down(ctx, exc)
    for checkpoint in ctx.live_checkpoints:
        offsets = probe.checkpoint_offsets(checkpoint)
        positions[f"checkpoint {checkpoint.name}"] = {
            t: dict(parts) for t, parts in offsets.items() if t in ends
        }
    if not any(positions.values()):
        return probe.nothing_measured(ctx.live_checkpoints, ctx.consumer_group, sorted(ends))
    lags: dict[str, dict[str, int]] = {}
    for reader, topics_read in positions.items():
        for topic, parts in topics_read.items():
            lags.setdefault(reader, {})[topic] = sum(
                high - (low if parts.get(p) is None else max(low, parts[p] or 0))
                for p, (low, high) in ends[topic].items()
            )
    worst_lag = max((lag for per_topic in lags.values() for lag in per_topic.values()), default=0)
    summary = "; ".join(
        f"{reader}: " + ", ".join(f"{t} {n:,}" for t, n in per_topic.items())
        for reader, per_topic in lags.items()
    )
    if worst_lag > ctx.settings.max_consumer_lag:
        return warn(
            f"lag above {ctx.settings.max_consumer_lag:,} messages ({summary}); the stream job "
            "is falling behind: check its log and resources",
            lag=lags,
        )
    return ok(f"lag within {ctx.settings.max_consumer_lag:,} messages ({summary})", lag=lags)
