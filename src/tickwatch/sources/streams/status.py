"""A stream's health figures in a file, so `tickwatch check` (another process) can judge them.

Each running TradeStream rewrites `DATA_DIR/streams/<venue>.json` about once a second:
its health figures (connected, last_message_age_s, reconnects, gaps, unfilled, drops, ...)
and `written_at`. A file not rewritten for a while means the stream is not running.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

STATUS_DIR = "streams"


def status_path(data_dir: Path, venue: str) -> Path:
    return data_dir / STATUS_DIR / f"{venue}.json"


def write_status(path: Path, state: str, figures: dict[str, Any]) -> None:
    """Replace the file atomically (a reader never sees half of it); errors are the caller's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"state": state, "written_at": datetime.now(UTC).isoformat(), **figures}
    partial = path.with_suffix(".tmp")
    partial.write_bytes(orjson.dumps(body, default=str))
    os.replace(partial, path)


def read_status(path: Path) -> dict[str, Any] | None:
    """The figures last written, or None when there is no readable file."""
    try:
        body = orjson.loads(path.read_bytes())
        datetime.fromisoformat(body["written_at"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None
