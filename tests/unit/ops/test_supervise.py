"""Embedded supervision: a crashing task is restarted with growing backoff, and it shows."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from tickwatch.config import Settings
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.ops.supervise import Supervisor


def test_crashing_task_restarts_with_backoff_and_is_recorded():
    stop = threading.Event()
    supervisor = Supervisor(stop, initial_backoff=0.05, max_backoff=0.1)
    calls: list[float] = []

    def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) <= 3:
            raise ConnectionError(f"feed down #{len(calls)}")

    supervisor.start("source:flaky", flaky)
    supervisor.join(5.0)
    status = supervisor.tasks["source:flaky"]
    assert status.state == "finished"
    assert status.restarts == 3
    assert status.last_error == "ConnectionError: feed down #3"
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    # backoff 0.05, then 0.1, then capped at 0.1
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.1


def test_checks_see_the_supervised_tasks(tmp_path: Path):
    stop = threading.Event()
    supervisor = Supervisor(stop, initial_backoff=30, max_backoff=30)
    release = threading.Event()

    def broken() -> None:
        raise OSError("socket closed")

    supervisor.start("engine", release.wait)
    supervisor.start("source:coingecko", broken)
    deadline = time.monotonic() + 5
    while supervisor.tasks["source:coingecko"].state != "backoff" and time.monotonic() < deadline:
        time.sleep(0.01)
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    ctx = OpsContext(settings, tasks=supervisor.tasks)
    crypto = run_check("producer-crypto", ctx)
    assert crypto.verdict is Verdict.FAIL
    assert "source:coingecko" in crypto.message
    assert run_check("stream-job", ctx).verdict is Verdict.OK
    stop.set()
    release.set()
    supervisor.join(2.0)
