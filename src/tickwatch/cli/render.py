"""What the CLI shows: the consoles, the status line and the tables its commands print.

Pure rendering: each function turns results into rich text or a table and decides nothing;
the command modules choose what to run and when to print. Library code logs (STYLE 8); only the CLI
writes to the terminal, through `console` (stderr: progress, status, errors) and `out` (stdout:
the results a script may read, such as `--json` bodies and result tables).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:  # type annotations only: `tickwatch --help` loads none of these
    from tickwatch.config import Settings
    from tickwatch.evaluate import Evaluation, NabEvaluation
    from tickwatch.ops.checks import CheckResult
    from tickwatch.processor import Counters
    from tickwatch.runtime import Runtime
    from tickwatch.sources import Source
    from tickwatch.store.workflow import Feedback

console = Console(stderr=True)
out = Console()

_VERDICT_COLOUR = {"ok": "green", "warn": "yellow", "fail": "red"}
_HEALTH_COLOUR = {"ok": "green", "degraded": "yellow", "paused": "yellow", "down": "red"}


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


def simulated_banner(settings: Settings, why: str) -> Panel:
    return Panel(
        f"[bold]SIMULATED DATA[/] - {why}.\n"
        f"Synthetic market (seed {settings.sim_seed}) at {settings.sim_speed:g}x real "
        f"time, kept apart in {settings.data_dir}.",
        style="bold yellow",
    )


def status_line(c: Counters, runtime: Runtime) -> str:
    high = sum(n for (_, sev), n in c.anomalies.items() if sev == "high")
    tasks = ", ".join(
        f"{name.removeprefix('source:')} {t.state}"
        + (f" ({t.restarts} restarts)" if t.restarts else "")
        for name, t in runtime.supervisor.tasks.items()
    )
    market = c.last_event_time.strftime("%Y-%m-%d %H:%M") if c.last_event_time else "-"
    health = "".join(f" | {source_health(s, runtime.settings.mask)}" for s in runtime.sources)
    now = f"[dim]{datetime.now():%H:%M:%S}[/]"
    if not runtime.embedded_engine:  # on Kafka this process only produces: count what it did
        return f"{now} published {runtime.published:,} ticks to Kafka | {tasks}{health}"
    return (
        f"{now} market time {market} | ticks {c.ticks_in:,} | "
        f"windows {c.windows:,} | anomalies {c.anomaly_total:,} (high {high}) | "
        f"[bold]alerts {c.alerts_opened:,}[/] | "
        f"late {c.late} | rejected {c.rejected} | dup {c.duplicates} | {tasks}{health}"
    )


def source_health(source: Source, mask: Callable[[str], str] = str) -> str:
    """One source's state, remaining call budget and, when unwell, why (secrets masked
    before the message is cut, so no part of a key shows)."""
    h = source.health
    text = f"{source.name} [{_HEALTH_COLOUR.get(h.state, 'dim')}]{h.state}[/]"
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


def summary_table(c: Counters) -> Table:
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


def checks_table(results: Iterable[CheckResult], verdict: str) -> Table:
    table = Table(title=f"tickwatch check: [{_VERDICT_COLOUR[verdict]}]{verdict.upper()}[/]")
    table.add_column("check")
    table.add_column("verdict")
    table.add_column("message", overflow="fold")
    for r in results:
        c = _VERDICT_COLOUR[r.verdict.value]
        table.add_row(r.name, f"[{c}]{r.verdict.value}[/]", r.message)
    return table


def stack_table(body: dict[str, Any], airflow_user: str, spark_checkpoint: str, logs: str) -> Table:
    table = Table(title="tickwatch stack: up", show_header=False)
    table.add_row("dashboard", body["web_url"])
    if body["airflow_url"]:
        table.add_row("Airflow", f"{body['airflow_url']} (user {airflow_user})")
    table.add_row("Kafka", body["kafka_bootstrap_servers"])
    table.add_row("PostgreSQL", f"{body['store_url']} (password: POSTGRES_PASSWORD)")
    table.add_row("Spark checkpoint", spark_checkpoint)
    table.add_row("logs and pids", logs)
    return table


def processes_table(processes: Iterable[Any]) -> Table:
    table = Table(title="processes")
    for column in ("process", "pid", "state", "log"):
        table.add_column(column, overflow="fold")
    for p in processes:
        state = "[green]alive[/]" if p.alive else "[red]dead[/]"
        table.add_row(p.name, str(p.pid or "-"), state, str(p.log))
    return table


def evaluation_table(result: Evaluation) -> Table:
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
    return table


def evaluation_alerts(result: Evaluation) -> str:
    a = result.alerts
    return (
        f"Alerts: {a.alerts:,} ({a.per_symbol_day:.2f} per symbol-day), {a.true_alerts:,} on a "
        f"label; labels found {a.detected:,} of {a.labels:,}; precision {a.precision:.3f}, "
        f"recall {a.recall:.3f}, F1 {a.f1:.3f}; data faults {a.faults:,}"
    )


def nab_table(result: NabEvaluation) -> Table:
    table = Table(title=f"NAB standard profile: {len(result.files)} files")
    for column in ("category", "score"):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category, score in result.categories().items():
        table.add_row(category, f"{score:.1f}")
    table.add_row("[b]all files[/]", f"[b]{result.score:.1f}[/]")
    return table


def nab_lines(result: NabEvaluation) -> list[str]:
    windows = sum(f.windows for f in result.files)
    found = sum(f.detected for f in result.files)
    return [
        f"{found} of {windows} labelled windows found; {result.alerts:,} alerts "
        "(null detector 0, perfect 100)",
        f"every per-window anomaly taken as a detection instead: {result.window_score:.1f}",
    ]


def feedback_line(marks: Feedback) -> str:
    precision = "-" if marks.precision is None else f"{marks.precision:.3f}"
    return (
        f"Feedback: {marks.marks:,} marks, {marks.true:,} true positives, "
        f"{marks.false:,} false positives; precision {precision}"
    )
