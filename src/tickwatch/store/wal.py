"""The tick log: accepted ticks whose windows are not stored yet, on disk before processing.

The engine keeps open windows in memory. If the process dies (SIGKILL, power cut of the
process), those ticks would be gone; the log keeps them, so a restart restores the baselines
from the store and re-feeds the logged ticks of the windows that were still open. It is
rewritten to just those ticks from time to time, so it stays about one lateness period long.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import orjson

from tickwatch.errors import InvalidTick
from tickwatch.model import EPOCH, Tick
from tickwatch.normalize import parse_tick, tick_to_record

_TRUSTED = timedelta(days=365 * 100)  # logged ticks were validated on the way in


class TickLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("ab")

    def append(self, ticks: Sequence[Tick]) -> None:
        """Write before processing; the OS keeps it if the process dies (no fsync needed)."""
        if ticks:
            self._handle.write(b"".join(orjson.dumps(tick_to_record(t)) + b"\n" for t in ticks))
            self._handle.flush()

    def read(self) -> list[Tick]:
        """The logged ticks; a torn last line (the process died mid-write) is skipped."""
        ticks = []
        with self.path.open("rb") as handle:
            for line in handle:
                try:
                    ticks.append(parse_tick(orjson.loads(line), EPOCH, _TRUSTED))
                except (orjson.JSONDecodeError, InvalidTick):
                    continue
        return ticks

    def rewrite(self, ticks: Iterable[Tick]) -> None:
        """Replace the log with `ticks` atomically."""
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(b"".join(orjson.dumps(tick_to_record(t)) + b"\n" for t in ticks))
        self._handle.close()
        os.replace(temporary, self.path)
        self._handle = self.path.open("ab")

    def close(self) -> None:
        self._handle.close()
