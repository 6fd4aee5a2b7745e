"""`tickwatch produce | spark | alerts`: the processes of the distributed mode (Kafka, Spark)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from tickwatch.cli.common import DataDir, KafkaServers, TopicPrefix, graceful_stop, read_settings
from tickwatch.cli.errors import exits_on_error, fail
from tickwatch.cli.render import console, out, source_health

if TYPE_CHECKING:  # type annotations only: each command imports what it runs in its body
    from tickwatch.sources import Source


@exits_on_error()
def produce(
    market: Annotated[str, typer.Argument(help="stocks (STOCK_SOURCE) or crypto (CRYPTO_SOURCE)")],
    once: Annotated[bool, typer.Option("--once", help="Poll each symbol once, then stop")] = False,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Write the ticks as JSON Lines (replay format) instead"),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Streaming sources: stop after N seconds", min=0),
    ] = None,
) -> None:
    """Run one live source alone and publish its ticks to its raw topic on the bus."""
    from tickwatch.runtime import open_bus, publish_raw
    from tickwatch.sources.alphavantage import AlphaVantageSource
    from tickwatch.sources.coingecko import CoinGeckoSource
    from tickwatch.sources.streams import stream_source

    settings = read_settings()
    if market not in ("stocks", "crypto"):
        fail(f"market must be stocks or crypto, got {market!r}")
    venue = settings.stock_source if market == "stocks" else settings.crypto_source
    if "," in venue:  # one producer process per feed: each writes its own raw ticks
        fail(f"produce runs one feed: set CRYPTO_SOURCE to one of {venue}")
    streaming = venue not in ("alphavantage", "coingecko")
    if once and streaming:
        fail(f"{venue} streams trades: use --duration N, not --once")
    rounds = 1 if once else None
    producer: Source = (
        stream_source(settings, venue, duration=duration)
        if streaming
        else AlphaVantageSource(settings, rounds=rounds)
        if market == "stocks"
        else CoinGeckoSource(
            settings, rounds=rounds, warm_start=not once, give_up_after=1 if once else None
        )
    )
    stop = graceful_stop()
    bus = open_bus(settings)
    count = 0
    handle = out_file.open("wb") if out_file is not None else None
    try:
        for batch in producer.batches(stop):
            if handle is not None:
                handle.writelines(orjson.dumps(record) + b"\n" for record in batch)
            else:
                publish_raw(bus, batch)
            count += len(batch)
            console.print(
                f"{producer.name}: {len(batch)} ticks | {source_health(producer, settings.mask)}"
            )
    finally:
        if handle is not None:
            handle.close()
        bus.close()
    where = str(out_file) if out_file is not None else "the bus"
    console.print(
        f"{producer.name}: {count:,} ticks to {where} | {source_health(producer, settings.mask)}"
    )
    if once and not count and not stop.is_set():  # nothing fetched is a failure, not success
        fail(f"{producer.name} --once wrote nothing: {producer.health.message or 'no new data'}", 1)


@exits_on_error()
def spark(
    data_dir: DataDir = None,
    kafka: KafkaServers = None,
    store: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://…")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint folder [DATA_DIR/checkpoints/spark]")
    ] = None,
    master: Annotated[str, typer.Option(help="Spark master")] = "local[*]",
    topic_prefix: TopicPrefix = "",
    trigger: Annotated[float, typer.Option(help="Seconds between micro-batches")] = 10.0,
    max_offsets: Annotated[
        int | None, typer.Option(help="At most this many records per micro-batch")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Process what the topics hold, then stop")
    ] = False,
    print_jars: Annotated[
        bool, typer.Option("--print-jars", help="Print the jar list for spark-submit --jars")
    ] = False,
) -> None:
    """Run the Spark Structured Streaming job: raw topics in; store, lake and topics out.

    The same rows as the embedded engine (DESIGN.md). The Kafka connector and JDBC jars are
    fetched once with Maven into .cache. Ctrl+C stops it; a restart resumes from the checkpoint.
    """
    from tickwatch.extras import require

    settings = read_settings(data_dir=data_dir, store_url=store, kafka_bootstrap_servers=kafka)
    require("spark", "tickwatch spark")
    from tickwatch.spark.jars import resolve_jars
    from tickwatch.spark.job import JobConfig, run

    if print_jars:
        out.print(",".join(str(jar) for jar in resolve_jars()), soft_wrap=True)
        return
    config = JobConfig.from_settings(
        settings,
        checkpoint=checkpoint,
        topic_prefix=topic_prefix,
        trigger_seconds=trigger,
        max_offsets_per_trigger=max_offsets,
    )
    console.print(
        f"Spark job: {config.bootstrap_servers} → {config.store_url.split('@')[-1]}, "
        f"lake {config.lake}, checkpoint {config.checkpoint}"
    )
    run(config, master, available_now=once)


@exits_on_error()
def alerts(
    kafka: KafkaServers = None,
    store: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the store [STORE_URL]")
    ] = None,
    topic_prefix: TopicPrefix = "",
    idle_seconds: Annotated[
        float | None,
        typer.Option(help="Stop after this many seconds without a new window (default: run)"),
    ] = None,
) -> None:
    """Distributed alerts: judge the Spark job's windows (topic clean_market_data) into
    alert episodes and market events, upserted into the store and published on market_alerts.

    Same alerts as the embedded pipeline for the same windows (docs/DETECTION.md). Resumes
    after a restart from the store's recent windows and the consumer group's offsets.
    """
    from tickwatch.alert_consumer import GROUP, consume, describe
    from tickwatch.alerting import AlertStage, alert_engine
    from tickwatch.extras import require
    from tickwatch.store import SqlStore

    settings = read_settings(store_url=store, kafka_bootstrap_servers=kafka)
    require("kafka", "tickwatch alerts")
    from tickwatch.bus.kafka import KafkaBus

    sql = SqlStore(settings.database_url)
    bus = KafkaBus(
        settings.kafka_bootstrap_servers,
        group=GROUP,
        topic_prefix=topic_prefix,
        partitions=settings.kafka_topic_partitions,
    )
    from tickwatch.alerts import WebhookNotifier

    notifier = WebhookNotifier.from_settings(settings, sql.engine)  # None without a URL
    stage = AlertStage(
        alert_engine(settings), sql, lake=None, bus=bus,
        notify=notifier.notify if notifier is not None else None,
    )  # fmt: skip
    stage.warm(sql.recent_windows(settings.alert_restore_windows))
    stop = threading.Event()
    console.print(
        f"alerts: {settings.kafka_bootstrap_servers} clean_market_data → "
        f"{sql.engine_url_masked} and market_alerts (Ctrl+C stops)"
    )
    try:
        windows = consume(stage, bus, stop, idle_seconds=idle_seconds)
    except KeyboardInterrupt:
        windows = -1
    finally:
        if notifier is not None:
            notifier.close()
        bus.close()
        sql.close()
    if stage.held:
        fail(f"{stage.held} alert rows could not be stored", 1)
    summary = describe(stage)
    read = "" if windows < 0 else f"{windows:,} windows read; "
    console.print(
        f"{read}{summary['opened']} alerts opened, {summary['market_events']} market events, "
        f"{summary['faults']} data faults"
    )
