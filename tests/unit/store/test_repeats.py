"""Raw tick keys that may repeat, with array operations (`store/repeats.py`), and the lake
days written once that compaction leaves alone."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tickwatch.store.parquet import RAW_TICKS, SCHEMAS, ParquetLake
from tickwatch.store.repeats import KeyWatch

DAY = 86_400_000_000
T0 = 19_786 * DAY  # 2024-03-04T00:00:00Z


def ticks(rows: list[tuple[str, str, int, float]]) -> pa.Table:
    """(source, symbol, microseconds after T0, price) rows as raw_ticks columns."""
    n = len(rows)
    return pa.table(
        {
            "source": [r[0] for r in rows],
            "asset_type": ["crypto"] * n,
            "symbol": [r[1] for r in rows],
            "event_time": pa.array([T0 + r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "ingest_time": pa.array([T0 + r[2] for r in rows], pa.timestamp("us", tz="UTC")),
            "price": [r[3] for r in rows],
            **{c: pa.nulls(n, pa.float64()) for c in ("volume", "open", "high", "low", "close")},
        },
        schema=SCHEMAS[RAW_TICKS],
    )


def test_a_repeat_right_after_its_tick_replaces_it_and_earlier_keys_are_doubtful():
    watch = KeyWatch()
    keep, doubtful = watch.scan(
        ticks([
            ("s", "A", 10, 1.0),
            ("s", "B", 10, 2.0),
            ("s", "A", 10, 1.5),  # A's instant again (B in between is another series): repeat
            ("t", "A", 10, 3.0),  # another source: its own series, a new key
            ("s", "A", 20, 4.0),
            ("s", "A", 15, 5.0),  # earlier than A's latest: doubtful
            ("s", "A", 20, 6.0),  # A's latest again, after a doubtful row in between
        ])
    )  # fmt: skip
    assert keep.tolist() == [False, True, True, True, True, True, True]
    assert doubtful.tolist() == [False, False, False, False, False, True, False]
    # the next block: A's latest (20) again is doubtful (its row is written already)
    keep, doubtful = watch.scan(ticks([("s", "A", 20, 7.0), ("s", "A", 30, 8.0)]))
    assert (keep.tolist(), doubtful.tolist()) == ([True, True], [True, False])


def _files(root: Path, day: str) -> list[Path]:
    return sorted((root / RAW_TICKS / f"date={day}").glob("part-*.parquet"))


def test_a_day_written_once_is_not_compacted_and_holds_each_key_once(tmp_path: Path):
    lake = ParquetLake(tmp_path)
    lake.write_tick_table(ticks([("s", "A", 1, 1.0), ("s", "A", 1, 1.5), ("s", "A", 2, 2.0)]))
    lake.write_tick_table(ticks([("s", "A", 3, 3.0), ("s", "A", DAY + 1, 4.0)]))
    lake.write_tick_table(ticks([("s", "A", DAY, 9.0)]))  # before A's latest: the next day
    first = _files(tmp_path, "2024-03-04")
    lake.compact_all()
    assert _files(tmp_path, "2024-03-04") == first and len(first) == 2  # left as written
    assert pq.ParquetFile(first[0]).metadata.row_group(0).column(0).compression == "SNAPPY"
    prices = pq.read_table(first).sort_by("event_time")["price"].to_pylist()
    assert prices == [1.5, 2.0, 3.0]  # the repeat replaced its tick
    assert len(_files(tmp_path, "2024-03-05")) == 1


def test_a_day_with_a_repeated_key_or_older_files_is_compacted(tmp_path: Path):
    lake = ParquetLake(tmp_path)
    lake.write_tick_table(ticks([("s", "A", 5, 1.0)]))
    lake.write_tick_table(ticks([("s", "A", 9, 2.0)]))
    lake.write_tick_table(ticks([("s", "A", 5, 3.0)]))  # A's key at 5 again, blocks later
    lake.compact_all()
    assert len(_files(tmp_path, "2024-03-04")) == 1
    assert lake.read(RAW_TICKS)["price"].to_pylist() == [3.0, 2.0]  # the latest write wins
    again = ParquetLake(tmp_path)  # a second run: the day has files already
    again.write_tick_table(ticks([("s", "A", 9, 4.0)]))
    again.compact_all()
    assert len(_files(tmp_path, "2024-03-04")) == 1
    assert again.read(RAW_TICKS)["price"].to_pylist() == [3.0, 4.0]
