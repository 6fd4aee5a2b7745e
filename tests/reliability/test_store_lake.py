"""A corrupt Parquet lake file (issue 14, class 12): `tickwatch check parquet` reads the files
and fails naming it, and the next replay's compaction moves it to lake/_quarantine and says so
instead of crashing, so later replays go through."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.ledger import Ledger
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store.parquet import ParquetLake

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
TICKWATCH = [sys.executable, "-m", "tickwatch.cli"]
AREA = "store"


def _ticks(path: Path, hours: float = 3) -> int:
    sim = MarketSimulator(["AAPL"], ["bitcoin"], seed=3)
    lines = [
        orjson.dumps(tick_to_record(t))
        for w in sim.windows(START, START + timedelta(hours=hours))
        for t in w
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def _tickwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TICKWATCH, *args], capture_output=True, text=True)


def _check_names(result: subprocess.CompletedProcess[str], name: str) -> str:
    (parquet,) = orjson.loads(result.stdout)["checks"]
    return "naming" if name in parquet["message"] else f"not naming ({parquet['message']})"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "other schema"])
def test_corrupt_lake_file_is_found_by_the_check_and_quarantined_by_compaction(
    ledger: Ledger, tmp_path: Path, damage: str
) -> None:
    ticks = tmp_path / "ticks.jsonl"
    count = _ticks(ticks)
    data = tmp_path / "data"
    assert _tickwatch("replay", str(ticks), "--data-dir", str(data)).returncode == 0
    lake = ParquetLake(data / "lake")
    windows = lake.read("clean_market_data").num_rows
    victim = sorted((data / "lake" / "clean_market_data").rglob("*.parquet"))[0]
    if damage == "truncated":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    elif damage == "garbage":
        victim.write_bytes(b"PAR1" + bytes(range(256)) * 8 + b"PAR1")
    else:
        pq.write_table(pa.table({"unrelated": [1, 2, 3]}), victim)

    checked = _tickwatch("check", "parquet", "--json", "--data-dir", str(data))
    again = _tickwatch("replay", str(ticks), "--data-dir", str(data))
    quarantined = list((data / "lake" / "_quarantine").rglob("*.parquet"))
    after = _tickwatch("check", "parquet", "--data-dir", str(data))
    lake_rows = ParquetLake(data / "lake").read("clean_market_data").num_rows
    raw_rows = ParquetLake(data / "lake").read("raw_ticks").num_rows
    expected = (
        f"check exit 1 naming {victim.name}; replay exit 0 saying so, 1 file quarantined, "
        f"{windows} lake rows, {count} raw ticks; check exit 0"
    )
    found = (
        f"check exit {checked.returncode} "
        f"{_check_names(checked, victim.name)} "
        f"{victim.name}; replay exit {again.returncode} "
        f"{'saying so' if 'quarantine' in again.stderr else 'silent'}, "
        f"{len(quarantined)} file quarantined, {lake_rows} lake rows, {raw_rows} raw ticks; "
        f"check exit {after.returncode}"
    )
    ledger.record(AREA, f"corrupt lake file ({damage}): check, then replay", 1, expected, found)
    assert found == expected, (checked.stdout, again.stderr[-3000:])
