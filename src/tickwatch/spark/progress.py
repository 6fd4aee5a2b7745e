"""Where the Spark job keeps its progress, and the heartbeat that says it is alive.

The job and the checks must agree on one checkpoint folder, so it is defined here, once:
`DATA_DIR/checkpoints/spark`. This module imports no PySpark: the checks (`tickwatch.ops`)
read it on the core install.

**Heartbeat.** A checkpoint's files change only when a micro-batch has input (an idle query
plans no batch), so their age cannot tell a quiet job from a dead one. The job's driver
therefore writes `CHECKPOINT/heartbeat.json` once per trigger interval while its query is
active, whether or not the interval had data:

    {"at": "<UTC ISO time>", "trigger_seconds": 10.0, "batch_id": 41, "pid": 1234}

It carries its own trigger interval, so a reader judges it without knowing how the job was
started: the job is dead or stuck when the heartbeat is older than `STALE_TRIGGERS` intervals
(two), plus `SLACK_SECONDS` for the write itself and the clocks of two processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

HEARTBEAT = "heartbeat.json"
STALE_TRIGGERS = 2
SLACK_SECONDS = 1.0


def checkpoint_dir(data_dir: Path) -> Path:
    """The Spark job's checkpoint folder under DATA_DIR (job default and checks' live one)."""
    return data_dir / "checkpoints" / "spark"


@dataclass(frozen=True)
class Heartbeat:
    at: datetime
    trigger_seconds: float
    batch_id: int | None = None
    pid: int | None = None

    @property
    def limit(self) -> timedelta:
        """How old the heartbeat may be before the job counts as dead."""
        return timedelta(seconds=STALE_TRIGGERS * self.trigger_seconds + SLACK_SECONDS)

    def age(self, now: datetime) -> timedelta:
        """`now - at`, never negative (a reader's clock slightly behind the writer's)."""
        return max(now - self.at, timedelta(0))


def write_heartbeat(
    checkpoint: Path, trigger_seconds: float, batch_id: int | None, now: datetime
) -> None:
    """Replace the heartbeat atomically (write a temporary file, then rename)."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    body = {
        "at": now.astimezone(UTC).isoformat(),
        "trigger_seconds": trigger_seconds,
        "batch_id": batch_id,
        "pid": os.getpid(),
    }
    temporary = checkpoint / f".{HEARTBEAT}.tmp"
    temporary.write_bytes(orjson.dumps(body))
    temporary.replace(checkpoint / HEARTBEAT)


def read_heartbeat(checkpoint: Path) -> Heartbeat | None:
    """The heartbeat in `checkpoint`, None when there is none (or it cannot be read)."""
    try:
        body = orjson.loads((checkpoint / HEARTBEAT).read_bytes())
        at = datetime.fromisoformat(body["at"])
        return Heartbeat(
            at if at.tzinfo is not None else at.replace(tzinfo=UTC),
            float(body["trigger_seconds"]),
            None if body.get("batch_id") is None else int(body["batch_id"]),
            None if body.get("pid") is None else int(body["pid"]),
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
