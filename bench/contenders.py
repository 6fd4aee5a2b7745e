"""Each contender runs the same workload and returns its time and the anomalies it found.

An anomaly is identified by (symbol, window start in us, anomaly type); the runner checks
that every contender found exactly the same set as the columnar engine on the same ticks.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.limit import anomalies as limit_anomalies
from bench.workload import TickBatch, slices
from tests.oracle.engine import Engine
from tickwatch.clock import micros
from tickwatch.engine import EngineConfig
from tickwatch.engine.columnar import ColumnarEngine, ColumnarOutput
from tickwatch.model import Feature

Key = tuple[str, int, str]
TYPES = [f.anomaly_type.value for f in Feature]
MICRO_BATCH = 100_000


def now() -> datetime:
    return datetime.now(UTC)


def _keys(out: ColumnarOutput, found: set[Key]) -> None:
    if out.windows is None or out.severity is None:
        return
    f, i = np.nonzero(out.severity)
    for k, j in zip(f.tolist(), i.tolist(), strict=True):
        found.add((out.symbols[out.windows.sym[j]], int(out.windows.start[j]), TYPES[k]))


def columnar(
    batch: TickBatch, size: int = MICRO_BATCH, flush: bool = True
) -> tuple[float, set[Key]]:
    parts = slices(batch, size)
    found: set[Key] = set()
    engine = ColumnarEngine(EngineConfig(), now)
    began = time.perf_counter()
    outs = [engine.process_batch(p) for p in parts]
    if flush:
        outs.append(engine.flush_batch())
    elapsed = time.perf_counter() - began
    for out in outs:
        _keys(out, found)
    return elapsed, found


def reference(batch: TickBatch) -> tuple[float, set[Key]]:
    ticks = [batch.tick(i) for i in range(len(batch))]
    engine = Engine(EngineConfig(), now)
    began = time.perf_counter()
    out = engine.process(ticks)
    out.extend(engine.flush())
    elapsed = time.perf_counter() - began
    return elapsed, {
        (a.symbol, micros(a.window_start), a.anomaly_type.value) for a in out.anomalies
    }


def limit(batch: TickBatch) -> tuple[float, set[Key]]:
    began = time.perf_counter()
    found = limit_anomalies(batch)
    elapsed = time.perf_counter() - began
    return elapsed, {(batch.symbols[s], t, TYPES[f]) for s, t, f in found}


def replay(path: Path, src: Path | None = None) -> tuple[Usage, set[Key]]:
    """`tickwatch replay FILE --json` in a fresh data dir: JSON Lines → SQLite + Parquet.

    Returns the process's usage and the anomalies stored. `src` runs the package from
    another source tree (the code before a change, in the same run).
    """
    with tempfile.TemporaryDirectory(prefix="tickwatch-bench-") as tmp:
        env = {**os.environ, "DATA_DIR": tmp, "LOG_LEVEL": "WARNING"}
        if src is not None:
            env["PYTHONPATH"] = str(src)
        command = [sys.executable, "-m", "tickwatch.cli", "replay", str(path), "--json"]
        usage = _timed(command, env)
        with sqlite3.connect(Path(tmp) / "tickwatch.db") as db:
            rows = db.execute("select symbol, window_start, anomaly_type from market_anomalies")
            found = {(s, micros(datetime.fromisoformat(t)), k) for s, t, k in rows}
    return usage, found


def write_limit(path: Path) -> tuple[Usage, set[Key]]:
    """`python -m bench.writelimit FILE DIR`: the plain one-pass program, writes included."""
    with tempfile.TemporaryDirectory(prefix="tickwatch-limit-") as tmp:
        command = [sys.executable, "-m", "bench.writelimit", str(path), tmp]
        usage = _timed(command, dict(os.environ))
        with sqlite3.connect(Path(tmp) / "limit.db") as db:
            rows = db.execute("select symbol, window_start, anomaly_type from market_anomalies")
            found = {(s, micros(datetime.fromisoformat(t)), k) for s, t, k in rows}
    return usage, found


@dataclass(frozen=True)
class Usage:
    """One child process: wall seconds, CPU seconds (user + system, all its threads) and peak
    RSS in MB. On a shared machine the CPU time moves less with other processes' load."""

    wall: float
    cpu: float
    rss_mb: float


# Runs a module as `python -m` would, then writes its own VmHWM to $BENCH_PEAK_FILE at exit.
# The child's ru_maxrss cannot tell: a forked child starts with its parent's high-water mark
# (this runner holds gigabytes of workload) and Linux keeps it across exec; VmHWM belongs to
# the memory the exec'd program built.
_PEAK = """
import atexit, os, runpy, sys
def peak():
    with open("/proc/self/status") as status, open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(peak)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def _timed(command: list[str], env: dict[str, str]) -> Usage:
    """`command` is [python, "-m", module, args...]. Wall and CPU time come from `wait4`,
    which reports that child only; the peak from the child itself (see `_PEAK`)."""
    with tempfile.TemporaryDirectory(prefix="tickwatch-peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        wrapped = [command[0], "-c", _PEAK, *command[2:]]
        began = time.perf_counter()
        child = subprocess.Popen(
            wrapped, env={**env, "BENCH_PEAK_FILE": str(peak_file)}, stdout=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, command)
        peak_kb = int(peak_file.read_text())
    return Usage(elapsed, usage.ru_utime + usage.ru_stime, peak_kb / 1024)


def latency(batch: TickBatch, rate: float, seconds: float) -> tuple[list[float], int]:
    """Window-close tick → anomaly in the SQL store and on the bus, at `rate` ticks/s.

    The embedded path: records → Processor.handle (validate, engine, SQLite, lake, bus). A
    subscriber on the bus's market_anomalies topic reads each anomaly back from the store;
    latency runs from the handle() call that got the closing tick to that read.
    """
    from tickwatch.bus.memory import MemoryBus
    from tickwatch.config import load_settings
    from tickwatch.model import MARKET_ANOMALIES
    from tickwatch.processor import Processor
    from tickwatch.records import tick_to_record
    from tickwatch.store import ParquetLake, SqlStore

    with tempfile.TemporaryDirectory(prefix="tickwatch-latency-") as tmp:
        settings = load_settings(data_dir=Path(tmp))
        store = SqlStore(settings.database_url)
        bus = MemoryBus()
        consumer = bus.subscribe([MARKET_ANOMALIES])
        processor = Processor(settings, store, ParquetLake(Path(tmp) / "lake"), bus)
        logging.getLogger("tickwatch.processor").setLevel(logging.WARNING)
        sent: dict[tuple[str, datetime, str], float] = {}
        received: dict[tuple[str, datetime, str], float] = {}
        done = threading.Event()
        reader = sqlite3.connect(Path(tmp) / "tickwatch.db", check_same_thread=False)

        def listen() -> None:
            while not done.is_set():
                for _, a in consumer.poll(1000, 0.05):
                    row = reader.execute(
                        "select 1 from market_anomalies where symbol = ? and anomaly_type = ?"
                        " and window_start = ?",
                        (
                            a.symbol,
                            a.anomaly_type.value,
                            a.window_start.isoformat(timespec="milliseconds"),
                        ),
                    ).fetchone()
                    if row is not None:
                        received.setdefault(
                            (a.symbol, a.window_start, a.anomaly_type.value), time.perf_counter()
                        )

        listener = threading.Thread(target=listen)
        listener.start()
        tick_s = 0.05
        per_chunk = max(1, int(rate * tick_s))
        total = min(len(batch), int(rate * seconds))
        records = [tick_to_record(batch.tick(i)) for i in range(total)]
        began = time.perf_counter()
        for k, a in enumerate(range(0, total, per_chunk)):
            pause = began + k * tick_s - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            t0 = time.perf_counter()
            out = processor.handle(records[a : a + per_chunk])
            for an in out.anomalies:
                sent.setdefault((an.symbol, an.window_start, an.anomaly_type.value), t0)
        time.sleep(0.5)
        done.set()
        listener.join()
        reader.close()
        store.close()
        seen = [received[k] - t for k, t in sent.items() if k in received]
    return seen, len(sent)


def peak_rss(symbols: int, windows: int, ticks_per_window: float, engine: str) -> float:
    """Peak RSS (MB) of a process that streams the workload through one engine."""
    code = f"""
import resource, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from bench.memory import run
print(run({symbols}, {windows}, {ticks_per_window}, {engine!r}))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])
