"""The tick log: accepted ticks whose windows are not stored yet, on disk before processing.

The engine keeps open windows in memory. If the process dies (SIGKILL, power cut of the
process), those ticks would be gone; the log keeps them, so a restart restores the baselines
from the store and re-feeds the logged ticks of the windows that were still open. It is
rewritten to just those ticks from time to time, so it stays about one lateness period long.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

import orjson

from tickwatch.errors import InvalidTick
from tickwatch.model import EPOCH, Tick
from tickwatch.normalize import parse_tick
from tickwatch.records import tick_to_record

log = logging.getLogger(__name__)

_TRUSTED = timedelta(days=365 * 100)  # logged ticks were validated on the way in


class TickLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("ab")
        self.error: str | None = None

    def append(self, ticks: Sequence[Tick]) -> None:
        """Write before processing; the OS keeps it if the process dies (no fsync needed).

        A failing disk (full) must not stop the ticks themselves: they are processed and
        stored all the same, only a crash before their windows close would lose them, which
        the error logged here says (once, until a write succeeds again).
        """
        if ticks:
            try:
                self._handle.write(b"".join(orjson.dumps(tick_to_record(t)) + b"\n" for t in ticks))
                self._handle.flush()
            except OSError as exc:
                self._failed("append to", exc)
                return
            if self.error is not None:
                log.warning("tick log %s writable again", self.path)
                self.error = None

    def read(self) -> list[Tick]:
        """The logged ticks; a torn last line (the process died mid-write) is skipped."""
        return read_ticks(self.path)

    def rewrite(self, ticks: Iterable[Tick]) -> None:
        """Replace the log with `ticks` atomically."""
        temporary = self.path.with_suffix(".tmp")
        try:
            with temporary.open("wb") as handle:
                handle.write(b"".join(orjson.dumps(tick_to_record(t)) + b"\n" for t in ticks))
        except OSError as exc:  # the old log stays: longer, never shorter than needed
            temporary.unlink(missing_ok=True)
            self._failed("rewrite", exc)
            return
        self._handle.close()
        os.replace(temporary, self.path)
        self._handle = self.path.open("ab")

    def _failed(self, action: str, exc: OSError) -> None:
        if self.error is None:
            log.error(
                "cannot %s the tick log %s (%s): a crash now would lose the open windows' ticks",
                action,
                self.path,
                exc,
            )
        self.error = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        try:
            self._handle.close()
        except OSError as exc:  # buffered bytes that a full disk refused
            self._failed("close", exc)


def read_ticks(path: Path) -> list[Tick]:
    """The ticks logged at `path` (none when there is no log); a torn last line is skipped."""
    ticks = []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        for line in handle:
            try:
                ticks.append(parse_tick(orjson.loads(line), EPOCH, _TRUSTED))
            except (orjson.JSONDecodeError, InvalidTick):
                continue
    return ticks
