"""`tickwatch replay` produces alert episodes in SQLite and in the lake, once per key however
often the same file is replayed (the fast columnar lane and the record lane alike)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from tickwatch.cli import app
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import ParquetLake
from tickwatch.store.alert_rows import ALERTS

runner = CliRunner()
START = datetime(2024, 3, 4, tzinfo=UTC)


def simulated_file(tmp_path: Path) -> tuple[Path, MarketSimulator]:
    import orjson

    sim = MarketSimulator(["AAPL"], ["bitcoin", "ethereum"], seed=4)
    path = tmp_path / "ticks.jsonl"
    with path.open("wb") as handle:
        for ticks in sim.windows(START, START + timedelta(days=2)):
            for tick in ticks:
                handle.write(orjson.dumps(tick_to_record(tick)) + b"\n")
    return path, sim


def sql_alerts(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute(
            "select alert_id, symbol, kind, opened_at, last_window_start, window_count,"
            " peak_severity, summary from alerts order by alert_id"
        ).fetchall()


def test_replay_stores_alerts_in_sqlite_and_the_lake_once(tmp_path: Path) -> None:
    path, sim = simulated_file(tmp_path)
    data = tmp_path / "data"
    for _ in range(2):
        result = runner.invoke(app, ["replay", str(path), "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
    rows = sql_alerts(data / "tickwatch.db")
    assert len(rows) >= 3
    assert len({r[0] for r in rows}) == len(rows)
    # most market alerts open on a window the simulator labelled (precision >= 0.7)
    labelled = {(la.symbol, la.start) for la in sim.labels}
    opened = {(str(r[1]), datetime.fromisoformat(str(r[3]))) for r in rows if r[2] == "market"}
    assert len(opened & labelled) >= 0.7 * len(opened)
    lake = ParquetLake(data / "lake").read(ALERTS)
    assert sorted(lake.column("alert_id").to_pylist()) == [r[0] for r in rows]
    assert lake.num_rows == len(rows)
    # the paced record lane (--speed: per-record parsing) gives the same alerts
    other = tmp_path / "other"
    result = runner.invoke(app, ["replay", str(path), "--data-dir", str(other), "--speed", "1e9"])
    assert result.exit_code == 0, result.output
    assert sql_alerts(other / "tickwatch.db") == rows
