"""Market data sources. Each yields batches of records in the replay format.

A record is a mapping (`source, asset_type, symbol, event_time, price, volume, ...`) or the raw
bytes of a line that could not be read; `tickwatch.normalize` validates both the same way.
A source paces itself and stops when `stop` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tickwatch.decoding import Record as Record  # what a source yields


@dataclass
class SourceHealth:
    """What a source says about itself, shown by the status line, /health and checks.

    state: ok | degraded (errors, still trying) | paused (rate limit or budget) | down.
    """

    state: str = "ok"
    message: str = ""
    last_success: datetime | None = None
    figures: dict[str, Any] = field(default_factory=dict)  # e.g. remaining_calls_today


class Source(Protocol):
    name: str
    health: SourceHealth

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]: ...
