"""Two writers on one data dir (issue 14, class 11): while `tickwatch run` writes a data dir, a
second `run` or a `replay` into it is refused at once with a clear error (exit 2) and changes
nothing; once the first process is gone (even by SIGKILL) the data dir is free again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from tests.ledger import Ledger
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator

TICKWATCH = [sys.executable, "-m", "tickwatch.cli"]
AREA = "processes"
ENV = {**os.environ, "SIM_HISTORY_HOURS": "1", "SIM_SPEED": "60", "STOCK_SYMBOLS": "",
       "CRYPTO_IDS": "bitcoin", "COLUMNS": "250"}  # fmt: skip


def _windows(db: Path) -> int:
    try:
        with sqlite3.connect(db) as con:
            return int(con.execute("select count(*) from clean_market_data").fetchone()[0])
    except sqlite3.Error:
        return 0


def _wait_for_rows(db: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _windows(db) < 3:
        time.sleep(0.3)
    assert _windows(db) >= 3


def test_a_second_writer_on_a_data_dir_is_refused(ledger: Ledger, tmp_path: Path, spawn):
    start = datetime(2024, 3, 4, tzinfo=UTC)
    sim = MarketSimulator([], ["ethereum"], seed=2)
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_bytes(
        b"".join(
            orjson.dumps(tick_to_record(t)) + b"\n"
            for w in sim.windows(start, start + timedelta(hours=2))
            for t in w
        )
    )
    run = [*TICKWATCH, "run", "--source", "simulate", "--no-web", "--data-dir", str(tmp_path)]
    data = tmp_path / "simulated"
    first = spawn(run, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_rows(data / "tickwatch.db")
    second = subprocess.run([*run, "--duration", "3"], env=ENV, capture_output=True, text=True)
    replay = subprocess.run([*TICKWATCH, "replay", str(ticks), "--data-dir", str(data)],
                            env=ENV, capture_output=True, text=True)  # fmt: skip
    with sqlite3.connect(data / "tickwatch.db") as con:
        ethereum = con.execute(
            "select count(*) from clean_market_data where symbol = 'ethereum'"
        ).fetchone()[0]
    first_alive = first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    after = subprocess.run([*TICKWATCH, "replay", str(ticks), "--data-dir", str(data)],
                           env=ENV, capture_output=True, text=True)  # fmt: skip

    def said(result: subprocess.CompletedProcess[str]) -> str:
        text = " ".join(result.stderr.split())
        return "in use" if f"pid {first.pid}" in text and "is in use" in text else "no reason"

    expected = (
        "second run exit 2 (in use), replay exit 2 (in use), 0 replayed rows, first still "
        "running; after SIGKILL replay exit 0"
    )
    found = (
        f"second run exit {second.returncode} ({said(second)}), replay exit "
        f"{replay.returncode} ({said(replay)}), {ethereum} replayed rows, first "
        f"{'still running' if first_alive else 'gone'}; after SIGKILL replay exit "
        f"{after.returncode}"
    )
    ledger.record(AREA, "two writers on one data dir (run + run, run + replay)", 2, expected,
                  found)  # fmt: skip
    assert found == expected, (second.stderr[-2000:], replay.stderr[-2000:], after.stderr[-2000:])
