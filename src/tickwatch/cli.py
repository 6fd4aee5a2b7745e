"""`tickwatch`: the command line. Library code logs; this module presents."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tickwatch.cli_errors import exits_on_error, fail, mask_in_errors
from tickwatch.cli_render import (
    StatusBoard,
    checks_table,
    console,
    evaluation_alerts,
    evaluation_table,
    feedback_line,
    nab_lines,
    nab_table,
    out,
    processes_table,
    simulated_banner,
    source_health,
    stack_table,
    status_line,
    summary_table,
)
from tickwatch.errors import SourceError

# Each command imports what it runs inside its body, so `tickwatch --help` (and a command that
# needs no engine, web app or store) starts without loading pyarrow, SQLAlchemy, FastAPI or an
# optional extra (Kafka, Spark, Grafana SDK). The names below serve type annotations only.
if TYPE_CHECKING:
    from tickwatch.config import Settings
    from tickwatch.sources import Source
    from tickwatch.sources.simulate import SimulatedSource

app = typer.Typer(
    help="Real-time anomaly detection for financial markets: 5-minute bars per symbol, each "
    "scored against that symbol's previous 20 bars (|z| > 3 is an anomaly).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
DataDir = Annotated[
    Path | None,
    typer.Option(
        help="Folder for the SQLite store and Parquet lake [env DATA_DIR, default ./data]"
    ),
]


class _MaskSecrets(logging.Filter):
    """Replaces configured secrets in every log line (a URL with a key, an error message)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and self.secrets:  # a traceback carries the exception's message
            trace = logging.Formatter().formatException(record.exc_info)
            if any(secret in trace for secret in self.secrets):
                message, record.exc_info, record.exc_text = f"{message}\n{trace}", None, None
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def _setup_logging(level: str, secrets: list[str] | None = None) -> None:
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=True)
    handler.addFilter(_MaskSecrets(secrets or []))
    logging.basicConfig(
        level=level, format="%(message)s", datefmt="%H:%M:%S", handlers=[handler], force=True
    )


def _settings(**overrides: Any) -> Settings:
    from tickwatch.config import load_settings
    from tickwatch.extras import require

    with exits_on_error():
        settings = load_settings(**overrides)
        if settings.bus == "kafka":
            require("kafka", "BUS=kafka")
    _setup_logging(settings.log_level, settings.secret_values())
    mask_in_errors(settings.secret_values())
    return settings


@app.command()
@exits_on_error()
def run(
    data_dir: DataDir = None,
    source: Annotated[
        str | None,
        typer.Option(help="auto (live APIs when reachable, else simulated), live or simulate"),
    ] = None,
    speed: Annotated[float | None, typer.Option(help="Simulator speed, x real time")] = None,
    seed: Annotated[int | None, typer.Option(help="Simulator random seed")] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl+C)")
    ] = None,
    web: Annotated[
        bool, typer.Option(help="Serve the dashboard on WEB_HOST:WEB_PORT while running")
    ] = True,
    bus: Annotated[
        str | None,
        typer.Option(help="memory, or kafka: produce to KAFKA_BOOTSTRAP_SERVERS for Spark"),
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the store (e.g. postgresql://...)")
    ] = None,
) -> None:
    """Run the pipeline: sources → engine → SQLite + Parquet, with a live status line."""
    from tickwatch.runtime import SIMULATED_DIR, Runtime

    settings = _settings(
        data_dir=data_dir, source=source, sim_speed=speed, sim_seed=seed, bus=bus, store_url=store
    )
    sources = _live_or_none(settings)
    if sources is None:
        settings = settings.model_copy(update={"data_dir": settings.data_dir / SIMULATED_DIR})
        why = (
            "--source simulate was chosen"
            if settings.source == "simulate"
            else "no live market API is reachable"
        )
        console.print(simulated_banner(settings, why))
    if settings.bus == "memory":  # on Kafka, run only produces: producers may share a dir
        _lock_data_dir(settings.data_dir, "run")
    if sources is None:
        sources = [_simulated_source(settings)]
    else:
        console.print(
            f"[bold green]LIVE DATA[/] from {', '.join(s.name for s in sources)}: "
            f"{', '.join(settings.stock_symbols)} | {', '.join(settings.crypto_ids)}"
        )
    runtime = Runtime(settings, sources, web=web)
    stop = _graceful_stop()
    if runtime.embedded_engine:  # the store says what wrote it (the SIMULATED banner)
        from tickwatch.store import provenance

        provenance.record(runtime.store.engine, [s.name for s in sources])
    runtime.start()
    if runtime.web is not None and runtime.web.wait_started():
        console.print(f"dashboard: [bold]{runtime.web.url}[/] (API docs at /docs)")
    began = time.monotonic()
    try:
        with StatusBoard(console) as board:
            while not stop.wait(board.tick):
                board.update(settings.mask(status_line(runtime.processor.counters, runtime)))
                if duration is not None and time.monotonic() - began >= duration:
                    break
                if runtime.sources_finished():
                    break
    finally:
        console.print("stopping: flushing buffered rows and closing open windows ...")
        with exits_on_error(1):  # rows could not be stored: never report success
            runtime.shutdown()
    if not runtime.embedded_engine:
        console.print(
            f"published {runtime.published:,} ticks to Kafka at "
            f"{settings.kafka_bootstrap_servers}; the Spark job (`tickwatch spark`) processes them"
        )
        return
    console.print(summary_table(runtime.processor.counters))


def _lock_data_dir(folder: Path, command: str) -> None:
    """Hold the data dir's writer lock (store/lock.py) while this process lives."""
    from tickwatch.store.lock import hold

    with exits_on_error():
        hold(folder, command)


def _live_or_none(settings: Settings) -> list[Source] | None:
    """Live sources for `--source live`, or for `auto` when an API answers; else None."""
    from tickwatch.sources.live import live_reachable, live_sources

    if settings.source == "simulate":
        return None
    if settings.source == "auto" and not live_reachable(settings):
        return None
    with exits_on_error():
        return live_sources(settings)


def _existing_store(settings: Settings) -> Settings:
    """The settings of the store `tickwatch run` wrote, never creating one.

    A simulated run keeps its data in DATA_DIR/simulated: when DATA_DIR holds no store but
    that folder does, use it (and say so). No store at all: exit 2 naming both places, before
    anything opens a connection (opening an SQLite URL creates an empty database)."""
    from tickwatch.runtime import SIMULATED_DIR

    if settings.store_url is not None:
        return settings
    db = Path(settings.database_url.removeprefix("sqlite:///"))
    if db.is_file():
        return settings
    simulated = settings.data_dir / SIMULATED_DIR
    if settings.data_dir.name != SIMULATED_DIR and (simulated / db.name).is_file():
        console.print(f"no store at {db}; using the simulated run's store in {simulated}")
        return settings.model_copy(update={"data_dir": simulated})
    fail(
        f"no store at {db} (nor in {simulated}): run `tickwatch run` or "
        "`tickwatch replay` first, or set DATA_DIR (or STORE_URL) to the store to use"
    )


def _simulated_source(settings: Settings) -> SimulatedSource:
    """The simulator, continuing this data dir's market if it has one (runtime.py)."""
    from tickwatch.runtime import simulated_source

    return simulated_source(settings)


@app.command()
@exits_on_error()
def serve(
    data_dir: DataDir = None,
    simulated: Annotated[
        bool, typer.Option("--simulated", help="Serve DATA_DIR/simulated (simulated runs)")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Listen address [env WEB_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env WEB_PORT]")] = None,
) -> None:
    """Serve the dashboard and JSON API over an existing store, without running the pipeline."""
    from tickwatch.ops.stack import detect
    from tickwatch.runtime import SIMULATED_DIR
    from tickwatch.web import WebServer, create_app

    settings = detect(_settings(data_dir=data_dir, web_host=host, web_port=port))
    if simulated:
        settings = settings.model_copy(update={"data_dir": settings.data_dir / SIMULATED_DIR})
    settings = _existing_store(settings)
    is_simulated = settings.data_dir.name == SIMULATED_DIR
    web_app = create_app(settings, simulated=is_simulated)  # a store may refuse: exit 2
    server = WebServer(web_app, settings.web_host, settings.web_port)
    console.print(f"dashboard: [bold]{server.url}[/] (Ctrl+C stops)")
    server.run()


@app.command()
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

    settings = _settings()
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
    stop = _graceful_stop()
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


def _graceful_stop() -> threading.Event:
    """First SIGINT/SIGTERM asks for a clean stop; a second one exits at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


@app.command()
@exits_on_error()
def replay(
    paths: Annotated[list[Path], typer.Argument(help="JSON Lines, CSV or Parquet tick files")],
    data_dir: DataDir = None,
    speed: Annotated[
        float | None, typer.Option(help="Pace by event time, N x real time (default: max speed)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Feed tick files through the pipeline into the data dir, then print a summary.

    Each run starts from empty baselines, so replaying the same file twice leaves the same rows.
    """
    from tickwatch.processor import Processor
    from tickwatch.sources.replay import ReplaySource, count_records
    from tickwatch.sources.replay_columns import replay_blocks
    from tickwatch.store import ParquetLake, SqlStore, provenance

    settings = _settings(data_dir=data_dir)
    logging.getLogger("tickwatch.processor").setLevel(logging.WARNING)
    source = ReplaySource(paths, speed)
    store = SqlStore(settings.database_url, bulk=True)
    _lock_data_dir(settings.data_dir, "replay")
    processor = Processor(settings, store, ParquetLake(settings.data_dir / "lake"))
    # counting reads every file once more: only for a progress bar someone sees
    shown = not as_json and console.is_terminal
    total = sum(count_records(p) for p in paths) if shown else None
    stop = _graceful_stop()
    seen: set[str] = set()  # source names of the replayed ticks: the store's provenance
    try:
        with _progress(as_json) as progress:
            task = progress.add_task("replaying", total=total)
            if speed is None:  # the fast lane: validated columns, exact fallback per block
                blocks = replay_blocks(paths, processor.clock(), settings.max_clock_skew, stop)
                for block in blocks:
                    if block.batch is not None:
                        seen.update(block.batch.sources)
                        processor.handle_batch(block.batch)
                    else:
                        seen.update(_source_names(block.records))
                        processor.handle(block.records)
                    progress.advance(task, block.rows)
            else:
                for batch in source.batches(stop):
                    seen.update(_source_names(batch))
                    processor.handle(batch)
                    progress.advance(task, len(batch))
    except SourceError as exc:  # a file failed after its check (changed, or an I/O error)
        console.print(f"[red]error:[/] {escape(str(exc))}; the records before it are kept")
        stopped = True
    else:
        stopped = False
    try:
        with exits_on_error(1):  # rows could not be stored: never report success
            processor.finish()
            provenance.record(store.engine, seen)
    finally:
        store.close()
    if stopped:
        raise typer.Exit(2)
    summary = processor.counters
    if as_json:
        out.print_json(orjson.dumps(summary.as_dict()).decode())
    else:
        console.print(summary_table(summary))
        console.print(
            f"results in {settings.database_url.removeprefix('sqlite:///')} and "
            f"{settings.data_dir / 'lake'}"
        )


def _source_names(records: Iterable[object]) -> set[str]:
    return {
        str(r["source"]) for r in records if isinstance(r, dict) and r.get("source") is not None
    }


def _progress(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )


@app.command()
@exits_on_error()
def simulate(
    out_file: Annotated[Path, typer.Option("--out", help="Tick file to write (.jsonl)")],
    labels: Annotated[
        Path | None, typer.Option(help="Write the injected anomalies as CSV symbol,start,end,type")
    ] = None,
    days: Annotated[float, typer.Option(help="Length of the simulated market, days")] = 1.0,
    start: Annotated[
        str, typer.Option(help="Start time, ISO 8601 with offset")
    ] = "2024-03-04T00:00:00+00:00",
    seed: Annotated[int | None, typer.Option(help="Random seed [env SIM_SEED]")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write a reproducible synthetic tick file (and its labelled anomalies)."""
    from tickwatch.normalize import parse_time, tick_to_record
    from tickwatch.sources.simulate import MarketSimulator

    settings = _settings(data_dir=data_dir, sim_seed=seed)
    begin = parse_time(start, "--start")
    simulator = MarketSimulator(settings.stock_symbols, settings.crypto_ids, settings.sim_seed)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out_file.open("wb") as handle:
        for ticks in simulator.windows(begin, begin + timedelta(days=days)):
            for tick in ticks:
                handle.write(orjson.dumps(tick_to_record(tick)) + b"\n")
            count += len(ticks)
    console.print(f"wrote {count:,} ticks to {out_file}")
    if labels is not None:
        simulator.write_labels(labels)
        console.print(f"wrote {len(simulator.labels):,} labelled anomalies to {labels}")


@app.command()
@exits_on_error()
def evaluate(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="JSON Lines, CSV or Parquet tick files")
    ] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labelled anomalies, CSV symbol,start,end[,type]")
    ] = None,
    nab_dir: Annotated[
        Path | None,
        typer.Option(
            "--nab",
            help="A Numenta Anomaly Benchmark directory (data/<category>/*.csv and "
            "labels/combined_windows.json): NAB's standard-profile score of the alerts",
        ),
    ] = None,
    detector: Annotated[
        str | None, typer.Option(help="zscore, robust or seasonal [env DETECTOR]")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
    feedback: Annotated[
        bool,
        typer.Option(
            "--feedback",
            help="Precision from the true/false-positive marks people stored so far "
            "[store at env DATA_DIR or STORE_URL]",
        ),
    ] = False,
) -> None:
    """Replay labelled data through the pipeline and score its anomalies and alerts.

    With tick files and --labels: precision, recall, F1 and delay of the per-window anomalies
    per type, then of the alert episodes, and alerts per symbol-day. With --nab DIR: each NAB
    file replayed on its own and NAB's standard-profile score of the alerts (0 = no
    detections, 100 = perfect), overall and per category. Nothing is written: everything goes
    to an in-memory store (docs/DETECTION.md). With --feedback: the alerts marked true or
    false positive in the dashboard or API, and their precision (true / marks).
    """
    from tickwatch import evaluate as evaluation

    settings = _settings(detector=detector)
    logging.getLogger("tickwatch.processor").setLevel(logging.WARNING)
    logging.getLogger("tickwatch.alerting").setLevel(logging.WARNING)
    if feedback:
        _evaluate_feedback(settings, as_json)
        return
    if nab_dir is not None:
        _evaluate_nab(nab_dir, settings, as_json)
        return
    if not paths or labels is None:
        fail("give tick files and --labels FILE, or --nab DIR")
    from tickwatch.sources.replay import ReplaySource

    ranges = evaluation.read_labels(labels)
    source = ReplaySource(paths)
    result = evaluation.evaluate(source.batches(threading.Event()), ranges, settings)
    if as_json:
        out.print_json(orjson.dumps(result.as_dict()).decode())
        return
    out.print(evaluation_table(result))
    out.print(evaluation_alerts(result))
    if result.rejected:
        console.print(f"[yellow]{result.rejected:,} records rejected or late (not scored)[/]")


def _evaluate_feedback(settings: Settings, as_json: bool) -> None:
    from dataclasses import asdict

    from tickwatch.store import SqlStore
    from tickwatch.store.workflow import feedback

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        fail(
            f"no store at {url.removeprefix('sqlite:///')}: set DATA_DIR (or "
            "STORE_URL) to the store the dashboard serves"
        )
    store = SqlStore(url)
    try:
        marks = feedback(store.engine)
    finally:
        store.close()
    result = {**asdict(marks), "precision": marks.precision}
    if as_json:
        out.print_json(orjson.dumps(result).decode())
        return
    out.print(feedback_line(marks))


def _evaluate_nab(directory: Path, settings: Settings, as_json: bool) -> None:
    from rich.progress import Progress

    from tickwatch import evaluate as evaluation
    from tickwatch import nab

    total = len(nab.load(directory))
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("NAB files", total=total)
        result = evaluation.evaluate_nab(directory, settings, lambda _name: progress.advance(task))
    if as_json:
        out.print_json(orjson.dumps(result.as_dict()).decode())
        return
    out.print(nab_table(result))
    for line in nab_lines(result):
        out.print(line)


@app.command()
@exits_on_error()
def check(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Checks or groups (pipeline, quality) to run; default: all read-only"),
    ] = None,
    data_dir: DataDir = None,
    kafka: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap host:port [KAFKA_BOOTSTRAP_SERVERS if BUS=kafka]"),
    ] = None,
    topic_prefix: Annotated[str, typer.Option(help="Prefix of the Kafka topic names")] = "",
    group: Annotated[
        str | None, typer.Option(help="Kafka consumer group whose lag to measure [none]")
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="Live stream checkpoint (repeatable) [DATA_DIR/checkpoints/spark]"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON")] = False,
) -> None:
    """Run operations checks; a one-screen verdict, exit code 1 when any check fails.

    Checks: see `tickwatch check --help` and the README's Operations section.
    """
    from tickwatch.ops.checks import DEFAULT_CHECKS, expand
    from tickwatch.ops.stack import detect

    settings = detect(_settings(data_dir=data_dir))
    selected = expand(names or DEFAULT_CHECKS)
    settings = _existing_store(settings)
    failed = _run_and_show_checks(
        settings, selected, as_json, kafka_bootstrap=kafka, topic_prefix=topic_prefix,
        consumer_group=group, live_checkpoints=tuple(checkpoint) if checkpoint else None,
    )  # fmt: skip
    if failed:
        raise typer.Exit(1)


def _run_and_show_checks(
    settings: Settings, selected: list[str], as_json: bool, **context: Any
) -> bool:
    """Run the checks, print their table (or JSON); True when any failed."""
    from tickwatch.ops.checks import OpsContext, run_checks, worst

    ctx = OpsContext.from_settings(settings, **context)
    logging.getLogger("tickwatch.ops").setLevel(logging.ERROR)  # the table says it all
    try:
        results = run_checks(selected, ctx)
    finally:
        ctx.close()
    verdict = worst(results)
    if as_json:
        body = {"verdict": verdict.value, "checks": [r.as_dict() for r in results]}
        out.print_json(orjson.dumps(body, default=str).decode())
    else:
        out.print(checks_table(results, verdict.value))
    return verdict.value == "fail"


@app.command()
@exits_on_error()
def spark(
    data_dir: DataDir = None,
    kafka: Annotated[
        str | None, typer.Option(help="Kafka bootstrap host:port [KAFKA_BOOTSTRAP_SERVERS]")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://…")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint folder [DATA_DIR/checkpoints/spark]")
    ] = None,
    master: Annotated[str, typer.Option(help="Spark master")] = "local[*]",
    topic_prefix: Annotated[str, typer.Option(help="Prefix of the Kafka topic names")] = "",
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

    settings = _settings(data_dir=data_dir, store_url=store, kafka_bootstrap_servers=kafka)
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


@app.command()
@exits_on_error()
def alerts(
    kafka: Annotated[
        str | None, typer.Option(help="Kafka bootstrap host:port [KAFKA_BOOTSTRAP_SERVERS]")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the store [STORE_URL]")
    ] = None,
    topic_prefix: Annotated[str, typer.Option(help="Prefix of the Kafka topic names")] = "",
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

    settings = _settings(store_url=store, kafka_bootstrap_servers=kafka)
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


stack_app = typer.Typer(
    help="The local distributed stack (PostgreSQL, Kafka, producers, Spark, alerts, web app, "
    "optionally Airflow) as background processes under DATA_DIR/stack: up | status | down.",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


@stack_app.command("up")
@exits_on_error()
def stack_up(
    data_dir: DataDir = None,
    source: Annotated[
        str, typer.Option(help="auto (live APIs when reachable, else simulated), live or simulate")
    ] = "auto",
    trigger: Annotated[float, typer.Option(help="Seconds between Spark micro-batches")] = 10.0,
    airflow: Annotated[
        bool, typer.Option("--airflow", help="Also Airflow standalone (database migrated)")
    ] = False,
    airflow_port: Annotated[int, typer.Option(help="Airflow's web port")] = 8082,
) -> None:
    """Start the stack and wait until it works; print where everything is.

    What already runs is kept, so `up` again starts whatever died; `tickwatch stack down`
    stops it all."""
    from tickwatch.extras import require
    from tickwatch.ops import stack

    settings = _settings(data_dir=data_dir)
    if source not in ("auto", "live", "simulate"):
        fail(f"--source must be auto, live or simulate, got {source!r}")
    require("kafka", "tickwatch stack")
    require("spark", "tickwatch stack")
    console.print("starting the stack (the first start fetches Kafka's and Spark's jars)")
    port = airflow_port if airflow else None
    body = stack.up(settings, source, trigger, port)  # type: ignore[arg-type]
    data = Path(body["data_dir"])
    spark_checkpoint = str(data / "checkpoints" / "spark")
    logs = str(stack.stack_dir(data))
    out.print(stack_table(body, settings.airflow_admin_user, spark_checkpoint, logs))
    out.print(processes_table(stack.processes(settings)))


@stack_app.command("status")
@exits_on_error()
def stack_status(
    names: Annotated[
        list[str] | None, typer.Argument(help="Checks or groups to run [pipeline]")
    ] = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON")] = False,
) -> None:
    """Each process alive or dead, then `tickwatch check` for the stack.

    Exit code 1 when a process is dead or a check fails."""
    from tickwatch.ops import stack
    from tickwatch.ops.checks import expand

    settings = _settings(data_dir=data_dir)
    if stack.read_stack(settings.data_dir) is None:
        fail(
            f"no stack under {stack.stack_dir(settings.data_dir)}: "
            "start one with `tickwatch stack up` (or set DATA_DIR)"
        )
    processes = stack.processes(settings)
    out.print(processes_table(processes))
    dead = not all(p.alive for p in processes)
    selected = expand(names or ["pipeline"])
    if _run_and_show_checks(stack.detect(settings), selected, as_json) or dead:
        raise typer.Exit(1)


@stack_app.command("down")
@exits_on_error()
def stack_down(
    data_dir: DataDir = None,
    delete_data: Annotated[
        bool, typer.Option("--delete-data", help="Also delete Kafka's and PostgreSQL's data")
    ] = False,
) -> None:
    """Stop the stack: each process (SIGTERM, SIGKILL after 30 s), then Kafka and PostgreSQL.

    Their data is kept for the next `up` unless --delete-data."""
    from tickwatch.ops import stack

    settings = _settings(data_dir=data_dir)
    stopped = stack.down(settings, keep_data=not delete_data)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmarks and rewrite docs/BENCHMARKS.md (from a source checkout; same as
    `make bench`). Options go to the runner: `tickwatch bench --help` lists them."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__main__.py").is_file():
        fail(
            "tickwatch bench runs from a source checkout: no bench/ folder "
            f"beside {root / 'src'}; clone the repository and run `make bench`"
        )
    done = subprocess.run([sys.executable, "-m", "bench", *ctx.args], cwd=root, check=False)
    raise typer.Exit(done.returncode)


store_app = typer.Typer(help="The SQL store's schema: upgrade | downgrade.", no_args_is_help=True)
app.add_typer(store_app, name="store")
StoreUrl = Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store [env STORE_URL]")]


@store_app.command("upgrade")
@exits_on_error()
def store_upgrade(
    store: StoreUrl = None,
    revision: Annotated[str, typer.Option(help="Target revision (default: the newest)")] = "heads",
) -> None:
    """Migrate a PostgreSQL store to this version's tables (Alembic; a database made before
    migrations existed is adopted). The store also upgrades itself when it opens: run this
    before a deploy to migrate once, as a user allowed to change the schema. SQLite stores
    create their tables themselves."""
    _migrate_store(store, "upgrade", revision)


@store_app.command("downgrade")
@exits_on_error()
def store_downgrade(
    to: Annotated[str, typer.Option("--to", help="Revision to go back to (-1: one step)")],
    store: StoreUrl = None,
) -> None:
    """Take a PostgreSQL store back to an older revision, with the tickwatch that made the
    newer one (before an older tickwatch runs on it). Tables a revision added are dropped
    with their rows."""
    _migrate_store(store, "downgrade", to)


def _migrate_store(store: str | None, direction: str, revision: str) -> None:
    settings = _settings(store_url=store)
    if settings.store_url is None or not settings.store_url.startswith("postgres"):
        console.print("an SQLite store creates its own tables: nothing to migrate")
        return
    from tickwatch.store import migrate
    from tickwatch.store.sql import connect

    engine = connect(settings.store_url)
    before, after = getattr(migrate, direction)(engine, revision)
    engine.dispose()
    where = escape(engine.url.render_as_string(hide_password=True))
    if before == after:
        console.print(f"{where}: at {after}, nothing to do")
    else:
        console.print(f"{where}: migrated from {before or 'no version'} to {after or 'none'}")


if __name__ == "__main__":
    app()
