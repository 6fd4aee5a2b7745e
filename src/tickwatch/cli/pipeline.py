"""`tickwatch run | serve | replay | simulate`: the embedded pipeline and its data."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tickwatch.cli.common import (
    DataDir,
    existing_store,
    graceful_stop,
    lock_data_dir,
    read_settings,
)
from tickwatch.cli.errors import exits_on_error
from tickwatch.cli.render import (
    StatusBoard,
    console,
    out,
    simulated_banner,
    status_line,
    summary_table,
)
from tickwatch.errors import SourceError

if TYPE_CHECKING:  # type annotations only: each command imports what it runs in its body
    from tickwatch.config import Settings
    from tickwatch.sources import Source
    from tickwatch.sources.simulate import SimulatedSource


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

    settings = read_settings(
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
        lock_data_dir(settings.data_dir, "run")
    if sources is None:
        sources = [_simulated_source(settings)]
    else:
        console.print(
            f"[bold green]LIVE DATA[/] from {', '.join(s.name for s in sources)}: "
            f"{', '.join(settings.stock_symbols)} | {', '.join(settings.crypto_ids)}"
        )
    runtime = Runtime(settings, sources, web=web)
    stop = graceful_stop()
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


def _live_or_none(settings: Settings) -> list[Source] | None:
    """Live sources for `--source live`, or for `auto` when an API answers; else None."""
    from tickwatch.sources.live import live_reachable, live_sources

    if settings.source == "simulate":
        return None
    if settings.source == "auto" and not live_reachable(settings):
        return None
    with exits_on_error():
        return live_sources(settings)


def _simulated_source(settings: Settings) -> SimulatedSource:
    """The simulator, continuing this data dir's market if it has one (runtime.py)."""
    from tickwatch.runtime import simulated_source

    return simulated_source(settings)


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

    settings = detect(read_settings(data_dir=data_dir, web_host=host, web_port=port))
    if simulated:
        settings = settings.model_copy(update={"data_dir": settings.data_dir / SIMULATED_DIR})
    settings = existing_store(settings)
    is_simulated = settings.data_dir.name == SIMULATED_DIR
    web_app = create_app(settings, simulated=is_simulated)  # a store may refuse: exit 2
    server = WebServer(web_app, settings.web_host, settings.web_port)
    console.print(f"dashboard: [bold]{server.url}[/] (Ctrl+C stops)")
    server.run()


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

    settings = read_settings(data_dir=data_dir)
    logging.getLogger("tickwatch.processor").setLevel(logging.WARNING)
    source = ReplaySource(paths, speed)
    store = SqlStore(settings.database_url, bulk=True)
    lock_data_dir(settings.data_dir, "replay")
    processor = Processor(settings, store, ParquetLake(settings.data_dir / "lake"))
    # counting reads every file once more: only for a progress bar someone sees
    shown = not as_json and console.is_terminal
    total = sum(count_records(p) for p in paths) if shown else None
    stop = graceful_stop()
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
    from tickwatch.normalize import parse_time
    from tickwatch.records import tick_to_record
    from tickwatch.sources.simulate import MarketSimulator

    settings = read_settings(data_dir=data_dir, sim_seed=seed)
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
