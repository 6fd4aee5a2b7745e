"""Faults injected into real parts; after recovery the stores hold exactly the rows of a
fault-free run of the same input (no gaps, no duplicates)."""

from __future__ import annotations

import itertools
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from tests.ledger import Ledger
from tests.services import SCRIPTS
from tickwatch.config import load_settings
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import ParquetLake, SqlStore
from tickwatch.store.parquet import RAW_TICKS
from tickwatch.store.sql import clean_market_data, market_anomalies

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NOW = datetime(2024, 3, 6, tzinfo=UTC)
AREA = "faults"
TICKWATCH = [sys.executable, "-m", "tickwatch.cli"]


def records(hours: float = 4) -> list[dict[str, Any]]:
    sim = MarketSimulator(["AAPL", "MSFT"], ["bitcoin"], seed=5, anomaly_rate=0.05)
    return [
        tick_to_record(t) for w in sim.windows(START, START + timedelta(hours=hours)) for t in w
    ]


DATA = records()


def stored(store: SqlStore) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        clean = sorted(tuple(r) for r in conn.execute(select(clean_market_data)))
        anomalies = sorted(tuple(r)[:-1] for r in conn.execute(select(market_anomalies)))
    return clean, anomalies


def processed(store: SqlStore, lake: ParquetLake | None = None) -> Processor:
    processor = Processor(load_settings(), store, lake, clock=lambda: NOW)
    for i in range(0, len(DATA), 400):
        processor.handle(DATA[i : i + 400])
    processor.finish()
    return processor


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Any], list[Any]]:
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('clean') / 'clean.db'}")
    processed(store)
    rows = stored(store)
    store.close()
    return rows


def describe(rows: tuple[list[Any], list[Any]]) -> str:
    return f"{len(rows[0])} windows, {len(rows[1])} anomalies"


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A PostgreSQL server of this test's own, so stopping it disturbs no other test."""
    folder = Path(f"/tmp/tickwatch-pg-fault-{os.getpid()}")
    url = subprocess.check_output([SCRIPTS / "postgres.sh", "start", str(folder)], text=True)
    yield folder, url.strip().splitlines()[-1]
    subprocess.run([SCRIPTS / "postgres.sh", "stop", str(folder)], check=False)


def test_postgres_stopped_and_restarted_mid_stream(ledger: Ledger, own_postgres, clean_run):
    folder, url = own_postgres
    port = (folder / "port").read_text().strip()
    store = SqlStore(url)
    processor = Processor(load_settings(), store, None, clock=lambda: NOW)
    third = len(DATA) // 3
    processor.handle(DATA[:third])
    subprocess.run([SCRIPTS / "postgres.sh", "stop", str(folder), "--keep"], check=True)
    for i in range(third, 2 * third, 400):  # the pipeline keeps going while the store is down
        processor.handle(DATA[i : min(i + 400, 2 * third)])
    assert processor.store_error is not None and processor.held_batches > 0
    subprocess.run([SCRIPTS / "postgres.sh", "start", str(folder), port], check=True)
    processor.handle(DATA[2 * third :])
    processor.finish()
    assert processor.store_error is None and processor.held_batches == 0
    found = stored(store)
    ledger.record(AREA, "PostgreSQL stopped and restarted", 1, describe(clean_run), describe(found))
    assert found == clean_run
    store.close()


def test_lake_unwritable_then_writable_again(ledger: Ledger, tmp_path: Path, clean_run):
    blocker = tmp_path / "lake"
    blocker.write_text("a file where the lake's folder should be")  # mkdir fails: like read-only
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    lake = ParquetLake(blocker / "inner", buffer_rows=500)
    processor = Processor(load_settings(), store, lake, clock=lambda: NOW)
    half = len(DATA) // 2
    processor.handle(DATA[:half])
    lake.flush()
    assert lake.error is not None and lake.buffered > 0
    blocker.unlink()  # the operator frees the path
    processor.handle(DATA[half:])
    processor.finish()
    assert lake.error is None
    lake_rows = lake.read("clean_market_data").num_rows
    raw_rows = lake.read(RAW_TICKS).num_rows
    ledger.record(AREA, "Parquet lake unwritable, then fixed", 1,
                  f"{len(clean_run[0])} lake rows, {len(DATA)} raw ticks",
                  f"{lake_rows} lake rows, {raw_rows} raw ticks")  # fmt: skip
    assert (lake_rows, raw_rows) == (len(clean_run[0]), len(DATA))
    assert stored(store) == clean_run


def test_lake_disk_full_then_space_again(ledger: Ledger, tmp_path: Path):
    """RLIMIT_FSIZE makes every write past 1 KiB fail with EFBIG, as a full disk would."""
    lake = ParquetLake(tmp_path / "lake", buffer_rows=10**9)
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    processor = Processor(load_settings(), store, lake, clock=lambda: NOW)
    processor.handle(DATA)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        lake.flush()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    # every raw tick and window held (alert rows may be held besides, in their own tables)
    assert lake.error is not None and lake.buffered >= len(DATA) + processor.counters.windows
    processor.finish()
    raw_rows = lake.read(RAW_TICKS).num_rows
    ledger.record(AREA, "Parquet lake disk full, then space again", 1, f"{len(DATA)} raw ticks",
                  f"{raw_rows} raw ticks")  # fmt: skip
    assert raw_rows == len(DATA) and lake.error is None


def test_replay_killed_with_sigkill_then_rerun(ledger: Ledger, tmp_path: Path, clean_run, spawn):
    source = tmp_path / "ticks.jsonl"
    source.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in DATA * 1))
    out = tmp_path / "out"
    command = [*TICKWATCH, "replay", str(source), "--data-dir", str(out), "--speed", "2000"]
    proc = spawn(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "tickwatch.db"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _has_rows(db):
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert _has_rows(db) and len(_rows(db)) < len(clean_run[0])  # killed mid-stream
    subprocess.run([*TICKWATCH, "replay", str(source), "--data-dir", str(out)], check=True,
                   capture_output=True)  # fmt: skip
    store = SqlStore(f"sqlite:///{db}")
    found = stored(store)
    lake_rows = pq.read_table(out / "lake" / "clean_market_data").num_rows
    ledger.record(AREA, "replay killed (SIGKILL) and rerun", 1,
                  f"{describe(clean_run)}, {len(clean_run[0])} lake rows",
                  f"{describe(found)}, {lake_rows} lake rows")  # fmt: skip
    assert found == clean_run
    assert lake_rows == len(clean_run[0])


def _rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute("select symbol, window_start from clean_market_data").fetchall()


def _has_rows(db: Path) -> bool:
    try:
        return len(_rows(db)) > 20
    except sqlite3.Error:
        return False


def _windows_of(db: Path, symbol: str) -> list[datetime]:
    try:
        with sqlite3.connect(db) as con:
            rows = con.execute(
                "select window_start from clean_market_data where symbol = ? order by 1", (symbol,)
            ).fetchall()
    except sqlite3.Error:  # the store is still being created
        return []
    return [datetime.fromisoformat(r[0]) for r in rows]


def test_embedded_runtime_killed_with_sigkill_then_restarted(ledger: Ledger, tmp_path: Path, spawn):
    env = {**os.environ, "SIM_HISTORY_HOURS": "1", "SIM_SPEED": "300", "WEB_PORT": "0",
           "STOCK_SYMBOLS": "", "CRYPTO_IDS": "bitcoin,ethereum"}  # fmt: skip
    command = [*TICKWATCH, "run", "--source", "simulate", "--data-dir", str(tmp_path)]
    db = tmp_path / "simulated" / "tickwatch.db"
    proc = spawn(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_windows_of(db, "bitcoin")) <= 14:
            time.sleep(0.5)
        time.sleep(1.0)  # mid-stream: windows open, ticks in flight
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    before = len(_windows_of(db, "bitcoin"))
    second = subprocess.run([*command, "--duration", "6"], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "re-fed" in second.stderr  # the tick log brought back the open windows
    gaps = 0
    for symbol in ("bitcoin", "ethereum"):
        starts = _windows_of(db, symbol)
        gaps += sum(1 for a, b in itertools.pairwise(starts) if b - a != timedelta(minutes=5))
    with sqlite3.connect(db) as con:
        late = con.execute("select count(*) from dead_letters where kind = 'late'").fetchone()[0]
    found = f"{gaps} missing windows, {late} late ticks"
    expected = "0 missing windows, 0 late ticks"
    ledger.record(AREA, "embedded runtime killed (SIGKILL) and restarted", 1, expected, found)
    assert len(_windows_of(db, "bitcoin")) > before
    assert (gaps, late) == (0, 0)


def test_sigterm_flushes_and_closes_windows_and_a_second_signal_exits_at_once(
    ledger: Ledger, tmp_path: Path, spawn
):
    env = {**os.environ, "SIM_HISTORY_HOURS": "1", "SIM_SPEED": "60", "WEB_PORT": "0"}
    command = [*TICKWATCH, "run", "--source", "simulate", "--data-dir", str(tmp_path)]
    proc = spawn(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    db = tmp_path / "simulated" / "tickwatch.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _has_rows(db):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    wal = (tmp_path / "simulated" / "ticks.wal").read_bytes()
    lake_files = list((tmp_path / "simulated" / "lake").rglob("*.parquet"))
    ledger.record(AREA, "SIGTERM: graceful stop", 1, "exit 0, tick log 0 bytes, lake written",
                  f"exit {proc.returncode}, tick log {len(wal)} bytes, "
                  f"{'lake written' if lake_files else 'no lake files'}")  # fmt: skip
    assert proc.returncode == 0, output
    assert wal == b"" and lake_files

    # a day of history for every default symbol makes the clean stop take a while ...
    busy = {**env, "SIM_SPEED": "1", "SIM_HISTORY_HOURS": "24"}
    other = tmp_path / "other"
    command = [*TICKWATCH, "run", "--source", "simulate", "--data-dir", str(other)]
    proc = spawn(command, env=busy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _has_rows(other / "simulated" / "tickwatch.db"):
        time.sleep(0.5)
    time.sleep(2)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)  # ... so the second signal arrives during it
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    ledger.record(AREA, "second SIGINT: immediate exit", 1, "exit 130", f"exit {code}")
    assert code == 130 and time.monotonic() - began < 5
