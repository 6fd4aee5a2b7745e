"""Supervised tasks: each runs in a thread and is restarted with exponential backoff if it
crashes, and every crash is recorded so health checks and the status line can show it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass
class TaskStatus:
    name: str
    state: str = "starting"  # running | backoff | finished | stopped
    restarts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None


class Supervisor:
    def __init__(
        self,
        stop: threading.Event,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.stop = stop
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.tasks: dict[str, TaskStatus] = {}
        self._threads: list[threading.Thread] = []

    def start(self, name: str, target: Callable[[], None]) -> None:
        status = self.tasks[name] = TaskStatus(name)
        thread = threading.Thread(target=self._loop, args=(status, target), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _loop(self, status: TaskStatus, target: Callable[[], None]) -> None:
        backoff = self.initial_backoff
        while not self.stop.is_set():
            status.state = "running"
            try:
                target()
            except Exception as exc:  # a task may fail in any way; the supervisor outlives it
                status.restarts += 1
                status.last_error = f"{type(exc).__name__}: {exc}"
                status.last_error_at = datetime.now(UTC)
                status.state = "backoff"
                log.exception(
                    "task %s crashed; restart %d in %.0fs", status.name, status.restarts, backoff
                )
                if self.stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.max_backoff)
                continue
            status.state = "finished"
            return
        status.state = "stopped"

    def join(self, timeout: float = 10.0) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def all_finished(self, prefix: str = "") -> bool:
        return all(
            t.state in ("finished", "stopped")
            for n, t in self.tasks.items()
            if n.startswith(prefix)
        )
