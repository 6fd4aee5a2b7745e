"""`tickwatch evaluate`: labelled replays, NAB and the dashboard's feedback marks, scored."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.progress import Progress

from tickwatch.cli.common import read_settings
from tickwatch.cli.errors import exits_on_error, fail
from tickwatch.cli.render import (
    console,
    evaluation_alerts,
    evaluation_table,
    feedback_line,
    nab_lines,
    nab_table,
    out,
)
from tickwatch.engine.detectors import DETECTORS

if TYPE_CHECKING:  # type annotations only: each command imports what it runs in its body
    from tickwatch.config import Settings


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
        str | None, typer.Option(help=f"{', '.join(DETECTORS)} [env DETECTOR]")
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

    settings = read_settings(detector=detector)
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
