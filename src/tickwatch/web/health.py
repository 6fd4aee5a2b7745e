"""/health and /health/checks: one verdict, so the two never disagree.

`/health` used to probe only the store and the tasks, so it said "ok" while `/health/checks`
answered 503 (stale data, a dead producer). Now it also runs the pipeline checks, and a failing
check makes it `degraded` (HTTP 200: the app itself serves; load balancers should not pull it),
a store that cannot be read makes it `down` (503). The check results are cached for
`CHECK_TTL_SECONDS`, because container health probes call `/health` every few seconds.

Checks that act (remove checkpoint folders, write a quality report; `ops.checks.ACTING`) are
not reachable over HTTP: a GET must only read, or any page on another origin could trigger them
with an `<img>` tag. They run from the CLI (`tickwatch check NAME`) and Airflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.config import Settings
from tickwatch.ops.checks import ACTING, CheckResult, OpsContext, expand, run_checks
from tickwatch.store.sql import clean_market_data
from tickwatch.web.pipeline_view import PipelineView
from tickwatch.web.storeview import StoreView

CHECK_TTL_SECONDS = 10.0


class ActingCheck(ValueError):
    """A check that changes state was asked for over HTTP."""


class Checks:
    """Runs named checks for the web app; the default (pipeline) group is cached briefly."""

    def __init__(
        self,
        settings: Settings,
        pipeline: PipelineView | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[CheckResult]] | None = None

    def run(self, names: Sequence[str] | None) -> list[CheckResult]:
        """Results of `names` (checks or groups; default the pipeline group); raises
        `ActingCheck` for a check that acts and `ConfigError` for an unknown name."""
        acting = sorted(set(names or ()) & ACTING)
        if acting:
            raise ActingCheck(
                f"check(s) {', '.join(acting)} change files, so HTTP does not run them "
                f"(a GET only reads): run `tickwatch check {' '.join(acting)}` instead"
            )
        if names:
            return self._run(expand(names))
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > CHECK_TTL_SECONDS:
                self._cached = (time.monotonic(), self._run(expand(["pipeline"])))
            return self._cached[1]

    def _run(self, names: list[str]) -> list[CheckResult]:
        tasks = self.pipeline.supervisor.tasks if self.pipeline is not None else None
        ctx = OpsContext.from_settings(self.settings, now=self.clock(), tasks=tasks)
        try:
            return run_checks(names, ctx)
        finally:
            ctx.close()


def health_report(
    store: StoreView,
    pipeline: PipelineView | None,
    simulated: bool,
    checks: Sequence[CheckResult],
) -> dict[str, Any]:
    """ok, degraded (a source, task or pipeline check is failing) or down (store unreadable)."""
    status = "ok"
    store_part: dict[str, Any] = {"url": store.url_masked, "ok": True}
    if store.read_only:
        store_part["read_only"] = True
    try:
        with store.engine.connect() as conn:
            conn.execute(select(clean_market_data.c.symbol).limit(1)).all()
    except SQLAlchemyError as exc:
        status = "down"
        store_part.update(ok=False, error=str(exc).splitlines()[0])
    failed = [r.name for r in checks if r.verdict.value == "fail"]
    body: dict[str, Any] = {
        "status": status,
        "simulated": simulated,
        "store": store_part,
        "checks": {"failing": failed, "detail": "/health/checks"},
    }
    if status == "ok" and failed:
        body["status"] = "degraded"
    if pipeline is None:
        body["pipeline"] = None
        return body
    tasks = [
        {
            "name": t.name,
            "state": t.state,
            "restarts": t.restarts,
            "last_error": t.last_error,
            "last_error_at": _iso(t.last_error_at),
        }
        for t in pipeline.supervisor.tasks.values()
    ]
    sources = [
        {
            "name": s.name,
            "state": s.health.state,
            "message": s.health.message,
            "last_success": _iso(s.health.last_success),
            "figures": s.health.figures,
        }
        for s in pipeline.sources
    ]
    failing = any(t["state"] == "backoff" for t in tasks) or any(
        s["state"] != "ok" for s in sources
    )
    if body["status"] == "ok" and failing:
        body["status"] = "degraded"
    body["pipeline"] = {"tasks": tasks, "counters": pipeline.counters.as_dict()}
    body["sources"] = sources
    return body


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
