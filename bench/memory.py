"""Peak memory of an engine holding many symbols: run in a fresh process by the runner.

The workload is generated one window at a time and handed over as it is made, so the peak
counts the engine's state (open windows, duplicate memory, `lookback` windows of history per
symbol) plus the interpreter, not the whole input.
"""

from __future__ import annotations

import resource
from datetime import UTC, datetime
from pathlib import Path

from bench.workload import Workload, window_parts
from tests.oracle.engine import Engine
from tickwatch.engine import EngineConfig
from tickwatch.engine.columnar import ColumnarEngine


def run(symbols: int, windows: int, ticks_per_window: float, engine: str) -> float:
    w = Workload(symbols, round(symbols * windows * ticks_per_window), windows / 288)
    clock = lambda: datetime.now(UTC)  # noqa: E731
    if engine == "columnar":
        col = ColumnarEngine(EngineConfig(), clock)
        for part in window_parts(w):
            col.process_batch(part)
    else:
        ref = Engine(EngineConfig(), clock)
        for part in window_parts(w):
            ref.process([part.tick(i) for i in range(len(part))])
    return peak_mb()


def peak_mb() -> float:
    """VmHWM of this process (ru_maxrss would include the parent's peak: Linux keeps it
    across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
