"""The check registry: named functions that judge one part of the pipeline.

A check takes an `OpsContext` (settings, the injectable "now", and what the caller can see of
the pipeline) and returns a `CheckResult`: a verdict (ok / warn / fail), a one-line message
that says what is wrong and what to do, and the figures it measured. The CLI (`tickwatch
check`), the web app and the Airflow DAGs run the same functions through `run_checks`.

A check that raises is itself a failure: `run_checks` turns the exception into a `fail`
result naming the check, so one broken check never hides the others.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.config import Settings
from tickwatch.errors import CheckFailed, ConfigError
from tickwatch.ops.supervise import TaskStatus
from tickwatch.spark.progress import checkpoint_dir
from tickwatch.store.sql import connect

log = logging.getLogger(__name__)


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.OK: 0, Verdict.WARN: 1, Verdict.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    message: str
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict is not Verdict.FAIL

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "message": self.message,
            "figures": self.figures,
            "seconds": round(self.seconds, 3),
        }


Outcome = tuple[Verdict, str, dict[str, Any]]


def ok(message: str, **figures: Any) -> Outcome:
    return Verdict.OK, message, figures


def warn(message: str, **figures: Any) -> Outcome:
    return Verdict.WARN, message, figures


def fail(message: str, **figures: Any) -> Outcome:
    return Verdict.FAIL, message, figures


@dataclass
class OpsContext:
    """What a check may look at.

    `now` is the moment the checks judge against (tests pass a fixed one). `kafka_bootstrap`
    is None in embedded mode (no broker to check). `tasks` are the supervised tasks of an
    embedded runtime in this process (None when the checks run outside it, e.g. from the CLI).
    `live_checkpoints` are the checkpoint folders a running stream job uses: never removed.
    """

    settings: Settings
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    kafka_bootstrap: str | None = None
    topic_prefix: str = ""
    consumer_group: str | None = None
    tasks: dict[str, TaskStatus] | None = None
    live_checkpoints: tuple[Path, ...] = ()
    _engine: Engine | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ConfigError(f"checks need an aware UTC 'now', got naive {self.now}")
        self.now = self.now.astimezone(UTC)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> OpsContext:
        """The context for this deployment: Kafka when BUS=kafka and the Spark job's checkpoint
        (`tickwatch.spark.progress.checkpoint_dir`, the job's own default), whose offsets give
        the lag: with BUS=kafka the stream job is Spark, and no consumer group consumes the raw
        topics (a group is measured only when named); `overrides` win."""
        kafka = settings.bus == "kafka"
        values: dict[str, Any] = {
            "kafka_bootstrap": settings.kafka_bootstrap_servers if kafka else None,
            "live_checkpoints": (checkpoint_dir(settings.data_dir),),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(settings, **values)

    @property
    def distributed(self) -> bool:
        return self.kafka_bootstrap is not None

    @property
    def engine(self) -> Engine:
        """The store's engine (opened on first use; no tables are created by a check)."""
        if self._engine is None:
            self._engine = connect(self.settings.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def checkpoint_root(self) -> Path:
        return self.settings.data_dir / "checkpoints"

    @property
    def lake_root(self) -> Path:
        return self.settings.data_dir / "lake"

    @property
    def reports_dir(self) -> Path:
        return self.settings.data_dir / "reports"


CheckFunction = Callable[[OpsContext], Outcome]


@dataclass(frozen=True)
class Check:
    name: str
    group: str  # "pipeline" or "quality"
    description: str
    function: CheckFunction


REGISTRY: dict[str, Check] = {}


def check(name: str, group: str, description: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function under `name` (unique, used by the CLI and the DAGs)."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} is registered twice")
        REGISTRY[name] = Check(name, group, description, function)
        return function

    return register


def _load_all() -> None:
    # the check modules register themselves on import, in this order
    for module in ("health", "streams", "counts", "quality", "checkpoints"):
        importlib.import_module(f"tickwatch.ops.{module}")


def checks(group: str | None = None) -> list[Check]:
    _load_all()
    return [c for c in REGISTRY.values() if group is None or c.group == group]


# Checks that act (remove files, write a report) run only when named.
ACTING = frozenset({"checkpoints", "quality-report"})
DEFAULT_CHECKS = ("pipeline", "quality")


def expand(names: Iterable[str]) -> list[str]:
    """Check names from names and group names (`pipeline`, `quality`, `all`), in registry
    order, each once; a group leaves out the acting checks, which run only when named."""
    _load_all()
    wanted: list[str] = []
    for name in names:
        if name in REGISTRY:
            found = [name]
        elif name in ("pipeline", "quality", "all"):
            group = None if name == "all" else name
            found = [c.name for c in checks(group) if c.name not in ACTING]
        else:
            known = ", ".join(["pipeline", "quality", "all", *REGISTRY])
            raise ConfigError(f"no check or group named {name!r}; known: {known}")
        wanted += [n for n in found if n not in wanted]
    return wanted


def run_check(name: str, ctx: OpsContext) -> CheckResult:
    _load_all()
    try:
        entry = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"no check named {name!r}; known checks: {known}") from None
    started = time.perf_counter()
    try:
        verdict, message, figures = entry.function(ctx)
    except SQLAlchemyError as exc:
        log.debug("check %s: store query failed", name, exc_info=True)
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        verdict, message, figures = fail(
            f"store query failed: {cause}; is the store up and initialised (`tickwatch run` "
            "creates the tables)?"
        )
    except Exception as exc:  # a broken check is a failed check, never a crashed report
        log.warning("check %s raised", name, exc_info=True)
        verdict, message, figures = fail(f"check raised {type(exc).__name__}: {exc}")
    result = CheckResult(name, verdict, message, figures, time.perf_counter() - started)
    log.log(
        logging.WARNING if verdict is Verdict.FAIL else logging.INFO,
        "check %s: %s: %s",
        name,
        verdict.value,
        message,
    )
    return result


def run_checks(names: Iterable[str], ctx: OpsContext) -> list[CheckResult]:
    return [run_check(name, ctx) for name in names]


def worst(results: Sequence[CheckResult]) -> Verdict:
    return max((r.verdict for r in results), key=lambda v: v.rank, default=Verdict.OK)


def require(result: CheckResult) -> CheckResult:
    """The result if it is not a failure; else raise `CheckFailed` (how Airflow sees red)."""
    if result.verdict is Verdict.FAIL:
        raise CheckFailed(f"{result.name}: {result.message}", result.as_dict())
    return result
