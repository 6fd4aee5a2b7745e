"""The Parquet lake: date partitions, one row per key after compaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tickwatch.model import AssetType, Tick
from tickwatch.store.parquet import RAW_TICKS, ParquetLake

T0 = datetime(2024, 3, 4, 23, 58, tzinfo=UTC)


def tick(minutes: int, price: float) -> Tick:
    moment = T0 + timedelta(minutes=minutes)
    return Tick("test", AssetType.CRYPTO, "bitcoin", moment, moment, price, 1.0)


def test_ticks_are_partitioned_by_utc_date_and_compacted_to_one_row_per_key(tmp_path: Path):
    lake = ParquetLake(tmp_path, buffer_rows=2)
    lake.write_ticks([tick(0, 1.0), tick(1, 2.0), tick(3, 3.0)])  # 23:58, 23:59, 00:01
    lake.write_ticks([tick(1, 2.5)])  # the same key again: the latest write wins
    lake.flush()
    assert lake.partitions(RAW_TICKS) == ["2024-03-04", "2024-03-05"]
    before = lake.read(RAW_TICKS)
    assert sorted(before["price"].to_pylist()) == [1.0, 2.5, 3.0]

    lake.compact_all()
    files = sorted((tmp_path / RAW_TICKS).rglob("*.parquet"))
    assert [f.parent.name for f in files] == ["date=2024-03-04", "date=2024-03-05"]
    after = lake.read(RAW_TICKS)
    assert after.num_rows == 3
    assert after["event_time"].to_pylist()[0] == T0


def test_compaction_quarantines_a_file_it_cannot_read_and_keeps_the_others(tmp_path: Path):
    lake = ParquetLake(tmp_path, buffer_rows=1)
    lake.write_ticks([tick(3, 1.0)])
    lake.write_ticks([tick(4, 2.0)])
    lake.write_ticks([tick(5, 3.0)])
    files = sorted((tmp_path / RAW_TICKS).rglob("part-*.parquet"))
    assert len(files) == 3
    files[1].write_bytes(b"PAR1 not really")
    lake.compact_all()
    assert [p.name for p in lake.quarantined] == [files[1].name]
    assert (tmp_path / "_quarantine" / RAW_TICKS / "date=2024-03-05" / files[1].name).exists()
    assert sorted(lake.read(RAW_TICKS)["price"].to_pylist()) == [1.0, 3.0]
    assert len(list((tmp_path / RAW_TICKS).rglob("part-*.parquet"))) == 1
