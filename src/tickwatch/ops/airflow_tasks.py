"""What the Airflow DAGs call: one check, one restart, or the run's summary, as plain functions.

The DAG files stay thin (a task is one call here), and these functions need no Airflow: the
settings come from the environment of the worker, like every other tickwatch process.

A check task returns its result as a dict (Airflow keeps it as the task's XCom) and raises
`CheckFailed` on a failing verdict, which makes the task red. A warning stays green: the
message is in the log and in the XCom.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from tickwatch.config import Settings, load_settings
from tickwatch.errors import CheckFailed, RestartError
from tickwatch.ops.checks import OpsContext, require, run_check
from tickwatch.ops.restart import launcher
from tickwatch.ops.stack import detect
from tickwatch.ops.stack import launcher as stack_launcher

log = logging.getLogger(__name__)

RESTART_WAIT_SECONDS = 30.0


def check_task(name: str, settings: Settings | None = None) -> dict[str, Any]:
    """Run check `name`; its result as a dict, or `CheckFailed` when it fails."""
    ctx = OpsContext.from_settings(detect(settings or load_settings()))
    try:
        return require(run_check(name, ctx)).as_dict()
    finally:
        ctx.close()


def restart_task(service: str, settings: Settings | None = None) -> dict[str, Any]:
    """Restart `service` and wait until its process is alive again (up to 30 s): the local
    stack's own process when one was started under DATA_DIR (`tickwatch stack up`), else
    through RESTART_BACKEND."""
    settings = settings or load_settings()
    target = stack_launcher(settings) or launcher(settings)
    log.warning("restarting %s after its check failed", service)
    target.restart(service)
    deadline = time.monotonic() + RESTART_WAIT_SECONDS
    while target.alive(service) is not True:
        if time.monotonic() > deadline:
            raise RestartError(f"{service} was restarted but is not alive after 30 s; read its log")
        time.sleep(0.5)
    return {"service": service, "restarted": True}


def summary_task(
    check_ids: Mapping[str, str],
    restart_ids: Mapping[str, str],
    pull: Callable[[str], Any],
) -> dict[str, Any]:
    """The run's verdict from the tasks' XComs (`pull(task_id)`); raises when any check failed.

    `check_ids` maps task id -> check name; a check task that failed left no XCom, so a
    missing result is a failure. `restart_ids` maps task id -> service: a restart that ran
    is reported, so the summary says both what broke and what was done about it.
    """
    verdicts: dict[str, str] = {}
    for task_id, name in check_ids.items():
        result = pull(task_id)
        verdicts[name] = result["verdict"] if isinstance(result, dict) else "fail"
    restarted = [service for task_id, service in restart_ids.items() if pull(task_id)]
    failed = [name for name, verdict in verdicts.items() if verdict == "fail"]
    body: dict[str, Any] = {"verdicts": verdicts, "failed": failed, "restarted": restarted}
    log.info("pipeline summary: %s", body)
    if failed:
        done = f"; restarted {', '.join(restarted)}" if restarted else ""
        raise CheckFailed(f"pipeline unhealthy: {', '.join(failed)} failed{done}", body)
    return body
