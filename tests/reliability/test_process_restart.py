"""kill -9 of `tickwatch run`, then a restart (issue 14, class 8): the stores end up equal to
those of a run that was never killed, in SQLite (windows and anomalies) and in the Parquet
lake (clean rows and raw ticks). Real processes and a real SIGKILL.

Both runs simulate the same market: the same seed, symbols and origin (DATA_DIR/market.json,
written the same into both data dirs before they start). They are compared over the windows
both closed, leaving out each symbol's last window of either run (a stop closes the window it
is in, with the ticks it has so far).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.compute as pc

from tests.ledger import Ledger
from tickwatch.store.parquet import ParquetLake

TICKWATCH = [sys.executable, "-m", "tickwatch.cli"]
AREA = "processes"
SYMBOLS = ("bitcoin", "ethereum")
ENV = {**os.environ, "SIM_SPEED": "300", "SIM_SEED": "21", "STOCK_SYMBOLS": "",
       "CRYPTO_IDS": ",".join(SYMBOLS)}  # fmt: skip


def _market(folder: Path, begin: datetime) -> None:
    folder.mkdir(parents=True)
    market = {"seed": 21, "stocks": [], "cryptos": list(SYMBOLS), "begin": begin.isoformat(),
              "start": (begin + timedelta(hours=1)).isoformat()}  # fmt: skip
    (folder / "market.json").write_bytes(orjson.dumps(market))


def _command(root: Path) -> list[str]:
    return [*TICKWATCH, "run", "--source", "simulate", "--no-web", "--data-dir", str(root)]


def _windows(db: Path, symbol: str) -> int:
    try:
        with sqlite3.connect(db) as con:
            query = "select count(*) from clean_market_data where symbol = ?"
            return int(con.execute(query, (symbol,)).fetchone()[0])
    except sqlite3.Error:
        return 0


def _rows(data: Path) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    """Per symbol: clean rows, anomalies (without detected_at), lake clean rows, lake ticks."""
    lake = ParquetLake(data / "lake")
    clean_lake, raw_lake = lake.read("clean_market_data"), lake.read("raw_ticks")
    found: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    with sqlite3.connect(data / "tickwatch.db") as con:
        for symbol in SYMBOLS:
            where = " where symbol = ? order by window_start"
            mine = pc.equal(clean_lake["symbol"], symbol)
            ticks = raw_lake.filter(pc.equal(raw_lake["symbol"], symbol))
            found[symbol] = {
                "windows": con.execute("select * from clean_market_data" + where,
                                       (symbol,)).fetchall(),
                "anomalies": [r[:-1] for r in con.execute(
                    "select * from market_anomalies" + where + ", anomaly_type", (symbol,))],
                "lake windows": sorted(
                    tuple(r.values()) for r in clean_lake.filter(mine).to_pylist()),
                "lake ticks": sorted(
                    (r["event_time"], r["price"], r["volume"]) for r in ticks.to_pylist()),
            }  # fmt: skip
    return found


def _before(rows: dict[str, dict[str, list[tuple[Any, ...]]]], cut: dict[str, datetime]) -> Any:
    """Only what lies before each symbol's cut (window start or tick time)."""

    def moment(value: Any) -> datetime:
        return value if isinstance(value, datetime) else datetime.fromisoformat(value)

    kept: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for symbol, tables in rows.items():
        kept[symbol] = {}
        for table, items in tables.items():
            at = 0 if table == "lake ticks" else 1 if table != "lake windows" else 2
            kept[symbol][table] = [r for r in items if moment(r[at]) < cut[symbol]]
    return kept


def _last_start(rows: dict[str, dict[str, list[tuple[Any, ...]]]], symbol: str) -> datetime:
    return datetime.fromisoformat(rows[symbol]["windows"][-1][1])


def test_run_killed_with_sigkill_then_restarted_equals_a_run_never_killed(
    ledger: Ledger, tmp_path: Path, spawn: Any
) -> None:
    # two hours behind the wall clock: at 300x the market stays in the past for the whole test
    # (ticks stamped ahead of the receiving clock are refused), after an hour of backfill
    begin = datetime.fromtimestamp(time.time() // 300 * 300, UTC) - timedelta(hours=3)
    killed, calm = tmp_path / "killed", tmp_path / "calm"
    _market(killed / "simulated", begin)
    _market(calm / "simulated", begin)

    proc = spawn(_command(killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = killed / "simulated" / "tickwatch.db"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _windows(db, "bitcoin") <= 16:
        time.sleep(0.2)
    time.sleep(0.7)  # mid-stream: windows open, ticks in the bus, lake rows in memory
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = _windows(db, "bitcoin")
    assert at_kill > 16
    again = subprocess.run([*_command(killed), "--duration", "5"], env=ENV, capture_output=True,
                           text=True)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    never = subprocess.run([*_command(calm), "--duration", "10"], env=ENV, capture_output=True,
                           text=True)  # fmt: skip
    assert never.returncode == 0, never.stderr[-3000:]

    a, b = _rows(killed / "simulated"), _rows(calm / "simulated")
    cut = {s: min(_last_start(a, s), _last_start(b, s)) for s in SYMBOLS}
    a, b = _before(a, cut), _before(b, cut)
    compared = sum(len(b[s]["windows"]) for s in SYMBOLS)
    assert compared > 2 * at_kill - 10  # the kill lies well inside the compared span
    differing = [f"{s} {t}" for s in SYMBOLS for t in b[s] if a[s][t] != b[s][t]]
    expected = "stores equal (windows, anomalies, lake windows, lake ticks)"
    found = f"differ: {', '.join(differing)}" if differing else expected
    ledger.record(AREA, "run killed (SIGKILL) and restarted vs never killed", 1, expected, found)
    assert found == expected
