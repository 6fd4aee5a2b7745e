"""`tickwatch evaluate --feedback`: precision from the marks people stored, by hand.

Five alerts in a SQLite store; a1 and a2 marked true, a3 false, a4 first false then true (its
current mark counts, once), a5 only acknowledged (no mark): 4 marks, 3 true, 1 false,
precision 3 / 4 = 0.75.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tickwatch.store import SqlStore, workflow
from tickwatch.store.alert_rows import alerts

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STORE_URL", "DATA_DIR")}
    return subprocess.run(
        [sys.executable, "-m", "tickwatch.cli", "evaluate", "--feedback", *args],
        capture_output=True,
        text=True,
        env={**env, "DATA_DIR": str(data_dir), "COLUMNS": "200"},
        cwd=data_dir,
        check=False,
        timeout=120,
    )


def alert(alert_id: str) -> dict[str, object]:
    start = NOW - timedelta(hours=1)
    return {
        "alert_id": alert_id, "symbol": "AAPL", "asset_type": "stock", "kind": "market",
        "opened_at": start, "last_window_start": start, "closed_at": None,
        "peak_severity": "high", "peak_abs_z": 6.0, "features": "volume_surge",
        "direction": "volume_surge:up", "window_count": 1, "market_event_id": None,
        "summary": alert_id,
    }  # fmt: skip


def test_feedback_reports_precision_of_the_current_marks(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'tickwatch.db'}")
    store.upsert(alerts, [alert(f"a{i}") for i in range(1, 6)])
    marks = [("a1", "true_positive"), ("a2", "true_positive"), ("a3", "false_positive"),
             ("a4", "false_positive"), ("a4", "true_positive"), ("a5", "acknowledge")]  # fmt: skip
    for alert_id, action in marks:
        workflow.act(store.engine, alert_id, action, "ana", "", NOW)
    store.close()

    done = cli(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"marks": 4, "true": 3, "false": 1, "precision": 0.75}
    text = cli(tmp_path)
    assert text.returncode == 0, text.stderr
    assert "4 marks, 3 true positives, 1 false positives; precision 0.750" in text.stdout


def test_feedback_without_a_store_says_where_it_looked_and_creates_nothing(
    tmp_path: Path,
) -> None:
    done = cli(tmp_path)
    assert done.returncode == 2
    assert f"no store at {tmp_path / 'tickwatch.db'}" in done.stderr.replace("\n", "")
    assert not (tmp_path / "tickwatch.db").exists()
