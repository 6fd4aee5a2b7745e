"""`tickwatch check | stack | store | bench`: operating a deployment."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.markup import escape

from tickwatch.cli.common import DataDir, TopicPrefix, existing_store, read_settings
from tickwatch.cli.errors import exits_on_error, fail
from tickwatch.cli.render import checks_table, console, out, processes_table, stack_table

if TYPE_CHECKING:  # type annotations only: each command imports what it runs in its body
    from tickwatch.config import Settings


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
    topic_prefix: TopicPrefix = "",
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

    settings = detect(read_settings(data_dir=data_dir))
    selected = expand(names or DEFAULT_CHECKS)
    settings = existing_store(settings)
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


stack_app = typer.Typer(
    help="The local distributed stack (PostgreSQL, Kafka, producers, Spark, alerts, web app, "
    "optionally Airflow) as background processes under DATA_DIR/stack: up | status | down.",
    no_args_is_help=True,
)


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

    settings = read_settings(data_dir=data_dir)
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

    settings = read_settings(data_dir=data_dir)
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

    settings = read_settings(data_dir=data_dir)
    stopped = stack.down(settings, keep_data=not delete_data)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def bench(ctx: typer.Context) -> None:
    """Run the benchmarks and rewrite docs/BENCHMARKS.md (from a source checkout; same as
    `make bench`). Options go to the runner: `tickwatch bench --help` lists them."""
    root = Path(__file__).resolve().parents[3]  # src/tickwatch/cli/ -> the checkout
    if not (root / "bench" / "__main__.py").is_file():
        fail(
            "tickwatch bench runs from a source checkout: no bench/ folder "
            f"beside {root / 'src'}; clone the repository and run `make bench`"
        )
    done = subprocess.run([sys.executable, "-m", "bench", *ctx.args], cwd=root, check=False)
    raise typer.Exit(done.returncode)


store_app = typer.Typer(help="The SQL store's schema: upgrade | downgrade.", no_args_is_help=True)


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
    settings = read_settings(store_url=store)
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
