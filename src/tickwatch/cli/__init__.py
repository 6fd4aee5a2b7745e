"""`tickwatch`: the command line. Library code logs; the CLI presents.

    common.py       settings read once (logging, masked secrets), the data dir's lock, Ctrl+C
    errors.py       how a command fails: `error: ...`, exit 2 (or 1 when results are not whole)
    render.py       what a command prints: the status line, tables, banners
    pipeline.py     run, serve, replay, simulate
    evaluate.py     evaluate
    operations.py   check, stack up | status | down, store upgrade | downgrade, bench
    distributed.py  produce, spark, alerts

Each command imports what it runs inside its body, so `tickwatch --help` (and a command that
needs no engine, web app or store) starts without loading pyarrow, SQLAlchemy, FastAPI or an
optional extra (Kafka, Spark, Grafana SDK). The commands are registered here, in the order
`tickwatch --help` lists them.
"""

from __future__ import annotations

import typer

from tickwatch.cli import distributed, evaluate, operations, pipeline

app = typer.Typer(
    help="Real-time anomaly detection for financial markets: 5-minute bars per symbol, each "
    "scored against that symbol's previous 20 bars (|z| > 3 is an anomaly).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for command in (
    pipeline.run,
    pipeline.serve,
    distributed.produce,
    pipeline.replay,
    pipeline.simulate,
    evaluate.evaluate,
    operations.check,
    distributed.spark,
    distributed.alerts,
):
    app.command()(command)
app.add_typer(operations.stack_app, name="stack")
app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)(operations.bench)
app.add_typer(operations.store_app, name="store")

__all__ = ["app"]
