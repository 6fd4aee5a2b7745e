"""Failures never reported as success (issue 14, class 2), on a real full file system: a small
tmpfs mounted for the test (a loop-mounted ext4 image where tmpfs cannot be mounted; skipped,
saying why, where neither can).

- the SQLite store on the full file system: `tickwatch replay` exits 1 and says how many rows
  it could not store (no "exit 0 with an empty database");
- the data dir (Parquet lake) on the full file system: the fast path exits 1 with the number
  of lake rows it could not write, no traceback;
- once space is freed, the same replay stores exactly the rows of a fault-free run.
"""

from __future__ import annotations

import errno
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from tests.ledger import Ledger
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import ParquetLake, SqlStore

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
TICKWATCH = [sys.executable, "-m", "tickwatch.cli"]
AREA = "store"


def _mount(target: Path, scratch: Path) -> str | None:
    """Mount a 2 MiB file system at `target`: tmpfs, else a loop-mounted ext4 image. The
    reason it cannot, or None."""
    tmpfs = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(target)]
    done = subprocess.run(tmpfs, capture_output=True, text=True)
    if done.returncode == 0:
        return None
    image = scratch / "small.img"
    with image.open("wb") as handle:
        handle.truncate(4 * 1024 * 1024)
    mkfs = subprocess.run(["mkfs.ext4", "-q", str(image)], capture_output=True, text=True)
    loop = subprocess.run(
        ["mount", "-o", "loop", str(image), str(target)], capture_output=True, text=True
    )
    if mkfs.returncode == 0 and loop.returncode == 0:
        return None
    return f"tmpfs: {done.stderr.strip()}; loop device: {(mkfs.stderr + loop.stderr).strip()}"


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "small"
    target.mkdir()
    why = _mount(target, tmp_path)
    if why is not None:
        pytest.skip(f"no small file system can be mounted here ({why})")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the file system refuses: it is full."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno in (errno.ENOSPC, errno.EDQUOT), exc
    with filler.open("ab", buffering=0) as handle:  # the last few bytes of a block, too
        try:
            while True:
                handle.write(b"\0" * 512)
        except OSError:
            pass
    return filler


@pytest.fixture(scope="module")
def ticks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A tick file and the rows a fault-free replay of it stores."""
    folder = tmp_path_factory.mktemp("clean")
    sim = MarketSimulator(["AAPL", "MSFT"], ["bitcoin"], seed=9, anomaly_rate=0.05)
    lines = [
        orjson.dumps(tick_to_record(t))
        for w in sim.windows(START, START + timedelta(hours=6))
        for t in w
    ]
    path = folder / "ticks.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    done = subprocess.run([*TICKWATCH, "replay", str(path), "--data-dir", str(folder / "d")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = _counts(folder / "d" / "tickwatch.db", folder / "d" / "lake")
    assert rows["windows"] > 100 and rows["anomalies"] > 0
    return path, rows


def _counts(db: Path, lake: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        counts = {
            table: con.execute(f"select count(*) from {name}").fetchone()[0]
            for table, name in (
                ("windows", "clean_market_data"),
                ("anomalies", "market_anomalies"),
                ("letters", "dead_letters"),
            )
        }
    counts["lake windows"] = ParquetLake(lake).read("clean_market_data").num_rows
    counts["lake ticks"] = ParquetLake(lake).read("raw_ticks").num_rows
    # every lake table (alerts too), one row per key after the replay's compaction
    counts["lake rows"] = sum(pq.ParquetFile(f).metadata.num_rows for f in lake.rglob("*.parquet"))
    return counts


def _replay(path: Path, data: Path, store: Path) -> subprocess.CompletedProcess[str]:
    env = {"STORE_URL": f"sqlite:///{store}", "COLUMNS": "1000"}
    import os

    return subprocess.run([*TICKWATCH, "replay", str(path), "--data-dir", str(data)],
                          capture_output=True, text=True, env={**os.environ, **env})  # fmt: skip


def _said(result: subprocess.CompletedProcess[str]) -> str:
    text = " ".join(result.stderr.split())
    if "Traceback" in text:
        return "a traceback"
    found = re.search(r"could not store ([\d,]+) rows", text)
    return f"'could not store {found.group(1)} rows'" if found else "nothing about lost rows"


def test_sqlite_store_on_a_full_file_system(
    ledger: Ledger, tmp_path: Path, small_fs: Path, ticks: tuple[Path, dict[str, int]]
) -> None:
    path, clean = ticks
    db = small_fs / "tickwatch.db"
    SqlStore(f"sqlite:///{db}").close()
    holder = sqlite3.connect(db)  # keeps the WAL index in place: opening needs no new space
    holder.execute("select count(*) from clean_market_data").fetchone()
    filler = fill(small_fs)
    full = _replay(path, tmp_path / "data", db)
    holder.close()
    filler.unlink()  # the operator frees space and runs the same replay again
    again = _replay(path, tmp_path / "data", db)
    stored = _counts(db, tmp_path / "data" / "lake")
    lost = clean["windows"] + clean["anomalies"] + clean["letters"]
    expected = f"exit 1, 'could not store {lost:,} rows'; after freeing space exit 0, {clean}"
    found = f"exit {full.returncode}, {_said(full)}; after freeing space exit {again.returncode}, "
    found += str(stored)
    ledger.record(AREA, "SQLite store on a full file system (replay)", 1, expected, found)
    assert found == expected, full.stderr[-3000:]


def test_lake_on_a_full_file_system_fast_path(
    ledger: Ledger, tmp_path: Path, small_fs: Path, ticks: tuple[Path, dict[str, int]]
) -> None:
    path, clean = ticks
    data = small_fs / "data"
    (data / "lake").mkdir(parents=True)
    filler = fill(small_fs)
    full = _replay(path, data, tmp_path / "store.db")
    filler.unlink()
    again = _replay(path, data, tmp_path / "store.db")
    stored = _counts(tmp_path / "store.db", data / "lake")
    lost = clean["lake rows"]
    expected = f"exit 1, 'could not store {lost:,} rows'; after freeing space exit 0, {clean}"
    found = f"exit {full.returncode}, {_said(full)}; after freeing space exit {again.returncode}, "
    found += str(stored)
    ledger.record(AREA, "Parquet lake on a full file system (replay fast path)", 1, expected,
                  found)  # fmt: skip
    assert found == expected, full.stderr[-3000:]


def test_corrupt_sqlite_file(
    ledger: Ledger, tmp_path: Path, ticks: tuple[Path, dict[str, int]]
) -> None:
    """The store opens (its schema page is intact) but the table pages are garbage: every
    write fails with "database disk image is malformed"."""
    path, clean = ticks
    db = tmp_path / "corrupt.db"
    SqlStore(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as con:
        con.execute("pragma journal_mode=delete")
        size = con.execute("pragma page_size").fetchone()[0]
        roots = [r[0] for r in con.execute("select rootpage from sqlite_master where rootpage")]
    raw = bytearray(db.read_bytes())
    for root in roots:
        start = (root - 1) * size
        raw[start : start + size] = bytes([0xA5]) * size
    db.write_bytes(bytes(raw))
    full = _replay(path, tmp_path / "data", db)
    lost = clean["windows"] + clean["anomalies"] + clean["letters"]
    expected = f"exit 1, 'could not store {lost:,} rows'"
    found = f"exit {full.returncode}, {_said(full)}"
    ledger.record(AREA, "corrupt SQLite file (replay)", 1, expected, found)
    assert found == expected, full.stderr[-3000:]
