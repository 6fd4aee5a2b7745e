"""`tickwatch`: the command line. Library code logs; this module presents."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tickwatch.errors import SourceError, TickwatchError

# Each command imports what it runs inside its body, so `tickwatch --help` (and a command that
# needs no engine, web app or store) starts without loading pyarrow, SQLAlchemy, FastAPI or an
# optional extra (Kafka, Spark, Grafana SDK). The names below serve type annotations only.
if TYPE_CHECKING:
    from tickwatch.config import Settings
    from tickwatch.processor import Counters
    from tickwatch.runtime import Runtime
    from tickwatch.sources import Source
    from tickwatch.sources.simulate import SimulatedSource

app = typer.Typer(
    help="Real-time anomaly detection for financial markets: 5-minute bars per symbol, each "
    "scored against that symbol's previous 20 bars (|z| > 3 is an anomaly).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

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

    try:
        settings = load_settings(**overrides)
        if settings.bus == "kafka":
            require("kafka", "BUS=kafka")
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    _setup_logging(settings.log_level, settings.secret_values())
    return settings


@app.command()
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
        console.print(
            Panel(
                f"[bold]SIMULATED DATA[/] - {why}.\n"
                f"Synthetic market (seed {settings.sim_seed}) at {settings.sim_speed:g}x real "
                f"time, kept apart in {settings.data_dir}.",
                style="bold yellow",
            )
        )
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
                board.update(settings.mask(_status_line(runtime.processor.counters, runtime)))
                if duration is not None and time.monotonic() - began >= duration:
                    break
                if runtime.sources_finished():
                    break
    finally:
        console.print("stopping: flushing buffered rows and closing open windows ...")
        try:
            runtime.shutdown()
        except TickwatchError as exc:  # rows could not be stored: never report success
            console.print(f"[red]error:[/] {settings.mask(str(exc))}")
            raise typer.Exit(1) from None
    if not runtime.embedded_engine:
        console.print(
            f"published {runtime.published:,} ticks to Kafka at "
            f"{settings.kafka_bootstrap_servers}; the Spark job (`tickwatch spark`) processes them"
        )
        return
    console.print(_summary(runtime.processor.counters))


def _lock_data_dir(folder: Path, command: str) -> None:
    """Hold the data dir's writer lock (store/lock.py) while this process lives."""
    from tickwatch.store.lock import hold

    try:
        hold(folder, command)
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def _live_or_none(settings: Settings) -> list[Source] | None:
    """Live sources for `--source live`, or for `auto` when an API answers; else None."""
    from tickwatch.sources.live import live_reachable, live_sources

    if settings.source == "simulate":
        return None
    if settings.source == "auto" and not live_reachable(settings):
        return None
    try:
        return live_sources(settings)
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


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
    console.print(
        f"[red]error:[/] no store at {db} (nor in {simulated}): run `tickwatch run` or "
        "`tickwatch replay` first, or set DATA_DIR (or STORE_URL) to the store to use"
    )
    raise typer.Exit(2)


def _simulated_source(settings: Settings) -> SimulatedSource:
    """The simulator, continuing this data dir's market if it has one (runtime.py)."""
    from tickwatch.runtime import simulated_source

    return simulated_source(settings)


@app.command()
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
    try:
        web_app = create_app(settings, simulated=is_simulated)
    except TickwatchError as exc:  # e.g. the store refuses connections: no traceback
        console.print(f"[red]error:[/] {settings.mask(str(exc))}")
        raise typer.Exit(2) from None
    server = WebServer(web_app, settings.web_host, settings.web_port)
    console.print(f"dashboard: [bold]{server.url}[/] (Ctrl+C stops)")
    server.run()


@app.command()
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
    from tickwatch.runtime import open_bus, raw_topic
    from tickwatch.sources.alphavantage import AlphaVantageSource
    from tickwatch.sources.coingecko import CoinGeckoSource
    from tickwatch.sources.streams import stream_source

    settings = _settings()
    if market not in ("stocks", "crypto"):
        console.print(f"[red]error:[/] market must be stocks or crypto, got {market!r}")
        raise typer.Exit(2)
    venue = settings.stock_source if market == "stocks" else settings.crypto_source
    if "," in venue:  # one producer process per feed: each writes its own raw ticks
        console.print(f"[red]error:[/] produce runs one feed: set CRYPTO_SOURCE to one of {venue}")
        raise typer.Exit(2)
    streaming = venue not in ("alphavantage", "coingecko")
    if once and streaming:
        console.print(f"[red]error:[/] {venue} streams trades: use --duration N, not --once")
        raise typer.Exit(2)
    rounds = 1 if once else None
    try:
        producer: Source = (
            stream_source(settings, venue, duration=duration)
            if streaming
            else AlphaVantageSource(settings, rounds=rounds)
            if market == "stocks"
            else CoinGeckoSource(
                settings, rounds=rounds, warm_start=not once, give_up_after=1 if once else None
            )
        )
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    stop = _graceful_stop()
    bus = open_bus(settings)
    count = 0
    handle = out_file.open("wb") if out_file is not None else None
    try:
        for batch in producer.batches(stop):
            for record in batch:
                if handle is not None:
                    handle.write(orjson.dumps(record) + b"\n")
                else:
                    key = str(record.get("symbol", "")) if isinstance(record, dict) else ""
                    bus.publish(raw_topic(record), key, record)
            count += len(batch)
            console.print(
                f"{producer.name}: {len(batch)} ticks | {_source_health(producer, settings.mask)}"
            )
    finally:
        if handle is not None:
            handle.close()
        bus.close()
    where = str(out_file) if out_file is not None else "the bus"
    console.print(
        f"{producer.name}: {count:,} ticks to {where} | {_source_health(producer, settings.mask)}"
    )
    if once and not count and not stop.is_set():  # nothing fetched is a failure, not success
        console.print(
            f"[red]error:[/] {producer.name} --once wrote nothing: "
            f"{settings.mask(producer.health.message or 'no new data')}"
        )
        raise typer.Exit(1)


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


class StatusBoard:
    """Where `tickwatch run` shows its status line.

    On a terminal: one line redrawn in place (rich Live, transient), cut to the screen width
    so it never grows into a block; log lines print above it and it vanishes when the run
    stops. Elsewhere (CI, a pipe, a log file) redrawing would only add noise, so a plain line
    is printed whole, as one line, every `every` seconds. `tick` is how often the caller
    should update.
    """

    def __init__(
        self, target: Console, every: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        from rich.live import Live

        self.console = target
        self.every = every
        self.clock = clock
        self.live = (
            Live(console=target, transient=True, auto_refresh=False) if target.is_terminal else None
        )
        self.tick = 1.0 if self.live is not None else every
        self._last = clock()

    def __enter__(self) -> StatusBoard:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def update(self, line: str) -> None:
        from rich.text import Text

        if self.live is not None:
            text = Text.from_markup(line, overflow="ellipsis")
            text.no_wrap = True
            self.live.update(text, refresh=True)
            return
        now = self.clock()
        if now - self._last >= self.every * 0.9:  # stop.wait(every) may wake a hair early
            self._last = now
            self.console.print(Text.from_markup(line), soft_wrap=True)  # whole, one line


def _status_line(c: Counters, runtime: Runtime) -> str:
    high = sum(n for (_, sev), n in c.anomalies.items() if sev == "high")
    tasks = ", ".join(
        f"{name.removeprefix('source:')} {t.state}"
        + (f" ({t.restarts} restarts)" if t.restarts else "")
        for name, t in runtime.supervisor.tasks.items()
    )
    market = c.last_event_time.strftime("%Y-%m-%d %H:%M") if c.last_event_time else "-"
    if not runtime.embedded_engine:  # on Kafka this process only produces: count what it did
        health = "".join(f" | {_source_health(s, runtime.settings.mask)}" for s in runtime.sources)
        now = f"[dim]{datetime.now():%H:%M:%S}[/]"
        return f"{now} published {runtime.published:,} ticks to Kafka | {tasks}{health}"
    return (
        f"[dim]{datetime.now():%H:%M:%S}[/] market time {market} | ticks {c.ticks_in:,} | "
        f"windows {c.windows:,} | anomalies {c.anomaly_total:,} (high {high}) | "
        f"[bold]alerts {c.alerts_opened:,}[/] | "
        f"late {c.late} | rejected {c.rejected} | dup {c.duplicates} | {tasks}"
        + "".join(f" | {_source_health(s, runtime.settings.mask)}" for s in runtime.sources)
    )


def _source_health(source: Source, mask: Callable[[str], str] = str) -> str:
    """One source's state, remaining call budget and, when unwell, why (secrets masked
    before the message is cut, so no part of a key shows)."""
    h = source.health
    style = {"ok": "green", "degraded": "yellow", "paused": "yellow", "down": "red"}
    text = f"{source.name} [{style.get(h.state, 'dim')}]{h.state}[/]"
    left = h.figures.get("remaining_calls_today")
    if left is not None:
        text += f" ({left} calls left today)"
    # a trade stream's troubles, when it has any (sources.streams)
    troubles = [
        f"{h.figures[k]} {k}" for k in ("reconnects", "unfilled", "drops") if h.figures.get(k)
    ]
    if troubles:
        text += f" ({', '.join(troubles)})"
    if h.state in ("degraded", "paused", "down") and h.message:
        text += f": {mask(h.message)[:100]}"
    return text


def _summary(c: Counters) -> Table:
    table = Table(title="Summary", show_header=False)
    for label, value in (
        ("ticks read", c.ticks_in),
        ("accepted", c.accepted),
        ("rejected (invalid)", c.rejected),
        ("late", c.late),
        ("duplicates", c.duplicates),
        ("windows", c.windows),
        ("anomalies", c.anomaly_total),
        ("alerts opened", c.alerts_opened),
        ("market-wide events", c.market_events),
        ("data faults", c.data_faults),
    ):
        table.add_row(label, f"{value:,}")
    for (kind, severity), n in sorted(c.anomalies.items()):
        table.add_row(f"  {kind} / {severity}", f"{n:,}")
    for reason, n in c.rejected_reasons.most_common(5):
        table.add_row(f"  rejected: {reason}", f"{n:,}")
    return table


@app.command()
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
    try:
        source = ReplaySource(paths, speed)
        store = SqlStore(settings.database_url, bulk=True)
    except TickwatchError as exc:  # the text may quote the file: never rich markup
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
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
        processor.finish()
        provenance.record(store.engine, seen)
    except TickwatchError as exc:  # rows could not be stored: never report success
        console.print(f"[red]error:[/] {settings.mask(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    if stopped:
        raise typer.Exit(2)
    summary = processor.counters
    if as_json:
        out.print_json(orjson.dumps(summary.as_dict()).decode())
    else:
        console.print(_summary(summary))
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
        console.print("[red]error:[/] give tick files and --labels FILE, or --nab DIR")
        raise typer.Exit(2)
    from tickwatch.sources.replay import ReplaySource

    try:
        ranges = evaluation.read_labels(labels)
        source = ReplaySource(paths)
        result = evaluation.evaluate(source.batches(threading.Event()), ranges, settings)
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(orjson.dumps(result.as_dict()).decode())
        return
    table = Table(title=f"Anomalies per window: {result.detector} ({result.windows:,} windows)")
    for column in ("type", "labels", "found", "anomalies", "true", "other type"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for column in ("precision", "recall", "F1", "delay"):
        table.add_column(column, justify="right")
    for m in result.metrics:
        delay = "-" if m.mean_delay is None else f"{m.mean_delay:.2f}"
        table.add_row(
            m.name, f"{m.labels:,}", f"{m.detected:,}", f"{m.alerts:,}", f"{m.true_alerts:,}",
            f"{m.cross:,}", f"{m.precision:.3f}", f"{m.recall:.3f}", f"{m.f1:.3f}", delay,
        )  # fmt: skip
    out.print(table)
    a = result.alerts
    out.print(
        f"Alerts: {a.alerts:,} ({a.per_symbol_day:.2f} per symbol-day), {a.true_alerts:,} on a "
        f"label; labels found {a.detected:,} of {a.labels:,}; precision {a.precision:.3f}, "
        f"recall {a.recall:.3f}, F1 {a.f1:.3f}; data faults {a.faults:,}"
    )
    if result.rejected:
        console.print(f"[yellow]{result.rejected:,} records rejected or late (not scored)[/]")


def _evaluate_feedback(settings: Settings, as_json: bool) -> None:
    from dataclasses import asdict

    from tickwatch.store import SqlStore
    from tickwatch.store.workflow import feedback

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        console.print(
            f"[red]error:[/] no store at {url.removeprefix('sqlite:///')}: set DATA_DIR (or "
            "STORE_URL) to the store the dashboard serves"
        )
        raise typer.Exit(2)
    try:
        store = SqlStore(url)
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    try:
        marks = feedback(store.engine)
    finally:
        store.close()
    result = {**asdict(marks), "precision": marks.precision}
    if as_json:
        out.print_json(orjson.dumps(result).decode())
        return
    precision = "-" if marks.precision is None else f"{marks.precision:.3f}"
    out.print(
        f"Feedback: {marks.marks:,} marks, {marks.true:,} true positives, "
        f"{marks.false:,} false positives; precision {precision}"
    )


def _evaluate_nab(directory: Path, settings: Settings, as_json: bool) -> None:
    from rich.progress import Progress

    from tickwatch import evaluate as evaluation
    from tickwatch import nab

    try:
        total = len(nab.load(directory))
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("NAB files", total=total)
            result = evaluation.evaluate_nab(
                directory, settings, lambda _name: progress.advance(task)
            )
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(orjson.dumps(result.as_dict()).decode())
        return
    table = Table(title=f"NAB standard profile: {len(result.files)} files")
    for column in ("category", "score"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category, score in result.categories().items():
        table.add_row(category, f"{score:.1f}")
    table.add_row("[b]all files[/]", f"[b]{result.score:.1f}[/]")
    out.print(table)
    windows = sum(f.windows for f in result.files)
    found = sum(f.detected for f in result.files)
    out.print(
        f"{found} of {windows} labelled windows found; {result.alerts:,} alerts "
        "(null detector 0, perfect 100)"
    )
    out.print(f"every per-window anomaly taken as a detection instead: {result.window_score:.1f}")


@app.command()
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
    try:
        selected = expand(names or DEFAULT_CHECKS)
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
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
        colour = {"ok": "green", "warn": "yellow", "fail": "red"}
        table = Table(title=f"tickwatch check: [{colour[verdict.value]}]{verdict.value.upper()}[/]")
        table.add_column("check")
        table.add_column("verdict")
        table.add_column("message", overflow="fold")
        for r in results:
            c = colour[r.verdict.value]
            table.add_row(r.name, f"[{c}]{r.verdict.value}[/]", r.message)
        out.print(table)
    return verdict.value == "fail"


@app.command()
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
    try:
        require("spark", "tickwatch spark")
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    from tickwatch.spark.jars import resolve_jars
    from tickwatch.spark.job import JobConfig, run

    try:
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
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command()
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
    try:
        require("kafka", "tickwatch alerts")
        from tickwatch.bus.kafka import KafkaBus

        sql = SqlStore(settings.database_url)
        bus = KafkaBus(
            settings.kafka_bootstrap_servers,
            group=GROUP,
            topic_prefix=topic_prefix,
            partitions=settings.kafka_topic_partitions,
        )
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
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
        console.print(f"[red]error:[/] {stage.held} alert rows could not be stored")
        raise typer.Exit(1)
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
        console.print(f"[red]error:[/] --source must be auto, live or simulate, got {source!r}")
        raise typer.Exit(2)
    try:
        require("kafka", "tickwatch stack")
        require("spark", "tickwatch stack")
        console.print("starting the stack (the first start fetches Kafka's and Spark's jars)")
        port = airflow_port if airflow else None
        body = stack.up(settings, source, trigger, port)  # type: ignore[arg-type]
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {escape(settings.mask(str(exc)))}")
        raise typer.Exit(2) from None
    table = Table(title="tickwatch stack: up", show_header=False)
    table.add_row("dashboard", body["web_url"])
    if body["airflow_url"]:
        table.add_row("Airflow", f"{body['airflow_url']} (user {settings.airflow_admin_user})")
    table.add_row("Kafka", body["kafka_bootstrap_servers"])
    table.add_row("PostgreSQL", f"{body['store_url']} (password: POSTGRES_PASSWORD)")
    table.add_row("Spark checkpoint", str(Path(body["data_dir"]) / "checkpoints" / "spark"))
    table.add_row("logs and pids", str(stack.stack_dir(Path(body["data_dir"]))))
    out.print(table)
    _show_processes(stack.processes(settings))


def _show_processes(processes: list[Any]) -> bool:
    """The processes table; True when one is dead."""
    table = Table(title="processes")
    for column in ("process", "pid", "state", "log"):
        table.add_column(column, overflow="fold")
    for p in processes:
        state = "[green]alive[/]" if p.alive else "[red]dead[/]"
        table.add_row(p.name, str(p.pid or "-"), state, str(p.log))
    out.print(table)
    return not all(p.alive for p in processes)


@stack_app.command("status")
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
        console.print(
            f"[red]error:[/] no stack under {stack.stack_dir(settings.data_dir)}: "
            "start one with `tickwatch stack up` (or set DATA_DIR)"
        )
        raise typer.Exit(2)
    dead = _show_processes(stack.processes(settings))
    try:
        selected = expand(names or ["pipeline"])
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if _run_and_show_checks(stack.detect(settings), selected, as_json) or dead:
        raise typer.Exit(1)


@stack_app.command("down")
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
    try:
        stopped = stack.down(settings, keep_data=not delete_data)
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {escape(settings.mask(str(exc)))}")
        raise typer.Exit(2) from None
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
        console.print(
            "[red]error:[/] tickwatch bench runs from a source checkout: no bench/ folder "
            f"beside {root / 'src'}; clone the repository and run `make bench`"
        )
        raise typer.Exit(2)
    done = subprocess.run([sys.executable, "-m", "bench", *ctx.args], cwd=root, check=False)
    raise typer.Exit(done.returncode)


store_app = typer.Typer(help="The SQL store's schema: upgrade | downgrade.", no_args_is_help=True)
app.add_typer(store_app, name="store")
StoreUrl = Annotated[str | None, typer.Option(help="SQLAlchemy URL of the store [env STORE_URL]")]


@store_app.command("upgrade")
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

    try:
        engine = connect(settings.store_url)
        before, after = getattr(migrate, direction)(engine, revision)
    except TickwatchError as exc:
        console.print(f"[red]error:[/] {escape(settings.mask(str(exc)))}")
        raise typer.Exit(2) from None
    engine.dispose()
    where = escape(engine.url.render_as_string(hide_password=True))
    if before == after:
        console.print(f"{where}: at {after}, nothing to do")
    else:
        console.print(f"{where}: migrated from {before or 'no version'} to {after or 'none'}")


if __name__ == "__main__":
    app()
