"""`tickwatch run` as a user starts it: a real process, simulated market, real stores."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

TICKWATCH = [sys.executable, "-m", "tickwatch.cli"]


def counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as con:
        windows = con.execute("select count(*) from clean_market_data").fetchone()[0]
        anomalies = con.execute("select count(*) from market_anomalies").fetchone()[0]
    return windows, anomalies


def test_run_simulated_shows_windows_and_anomalies_then_stops_cleanly_on_sigint(tmp_path: Path):
    env = {**os.environ, "SIM_HISTORY_HOURS": "4", "SIM_SPEED": "120", "WEB_PORT": "0"}
    proc = subprocess.Popen(
        [*TICKWATCH, "run", "--source", "simulate", "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    db = tmp_path / "simulated" / "tickwatch.db"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if db.exists() and counts(db)[1] > 0 and counts(db)[0] >= 5 * 48:
                break  # the 4 h of history are in, anomalies among them
            time.sleep(1)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "SIMULATED DATA" in output
    windows, anomalies = counts(db)
    # 4 h of history for 5 crypto ids alone is 5 * 48 windows; stocks add more in market hours
    assert windows >= 5 * 48 and anomalies > 0
    assert "Summary" in output and "flushing buffered rows" in output
    assert not (tmp_path / "tickwatch.db").exists()  # simulated data never mixes with live data


def test_a_restart_resumes_after_the_stored_windows_without_late_ticks(tmp_path: Path):
    env = {**os.environ, "SIM_HISTORY_HOURS": "2", "SIM_SPEED": "120", "WEB_PORT": "0"}
    command = [*TICKWATCH, "run", "--source", "simulate", "--data-dir", str(tmp_path)]
    first = subprocess.run([*command, "--duration", "3"], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    db = tmp_path / "simulated" / "tickwatch.db"
    windows_before, _ = counts(db)
    second = subprocess.run([*command, "--duration", "6"], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "resuming the simulated market" in second.stderr
    assert "restored baselines" in second.stderr
    with sqlite3.connect(db) as con:
        late = con.execute("select count(*) from dead_letters where kind = 'late'").fetchone()[0]
    assert late == 0
    assert counts(db)[0] > windows_before
