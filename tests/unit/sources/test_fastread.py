"""The replay fast lane reads exactly what `read_records` + `normalize.parse_tick` would.

A block becomes columns only when every row would pass `parse_tick` unchanged; otherwise its
records go the exact way. Each case compares the fast lane with that independent path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tickwatch.engine.batch import TickBatch
from tickwatch.normalize import parse_tick
from tickwatch.sources.fastread import read_blocks
from tickwatch.sources.replay import read_records

NOW = datetime(2024, 3, 5, tzinfo=UTC)
SKEW = timedelta(minutes=5)

GOOD = [
    {
        "source": "av",
        "asset_type": "stock",
        "symbol": "IBM",
        "event_time": "2024-03-04T10:00:00+00:00",
        "price": 170.5,
        "volume": 10,
    },
    {
        "source": "cg",
        "asset_type": "crypto",
        "symbol": "BRK B",
        "event_time": "2024-03-04T05:01:00.25-05:00",
        "ingest_time": "2024-03-04T10:01:01Z",
        "price": None,
        "volume": None,
        "open": 1.0,
        "high": 2.0,
        "low": 0.5,
        "close": 1.5,
    },
    {
        "source": "av",
        "asset_type": "stock",
        "symbol": "IBM",
        "event_time": "2024-03-04T10:02:00.123456Z",
        "price": 171,
        "volume": 0,
        "extra": "ignored",
    },
]


def expected(path: Path) -> TickBatch:
    return TickBatch.from_ticks([parse_tick(r, NOW, SKEW) for r in read_records(path)])  # type: ignore[arg-type]


def same(a: TickBatch, b: TickBatch) -> None:
    assert [a.tick(i) for i in range(len(a))] == [b.tick(i) for i in range(len(b))]
    for name in ("event", "ingest", "price", "volume", "open", "close"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_clean_json_lines_become_one_batch_equal_to_parse_tick(tmp_path: Path):
    path = write_jsonl(tmp_path / "t.jsonl", GOOD)
    (block,) = read_blocks(path, NOW, SKEW)
    assert block.batch is not None and block.rows == 3
    same(block.batch, expected(path))
    assert block.batch.tick(1).ingest_time == datetime(2024, 3, 4, 10, 1, 1, tzinfo=UTC)
    assert block.batch.tick(0).ingest_time == NOW  # no ingest_time: the reader's clock


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD[0], "price": -1.0},  # out of range
        {**GOOD[0], "price": "170.5"},  # a number as text: normalize accepts it, arrow does not
        {**GOOD[0], "event_time": "2024-03-04T10:00:00"},  # no offset
        {**GOOD[0], "event_time": 1709546400},  # epoch seconds
        {**GOOD[0], "event_time": "2099-01-01T00:00:00Z"},  # in the future
        {**GOOD[0], "asset_type": " Stock "},  # normalize cleans it: the exact way decides
        {**GOOD[0], "symbol": " IBM"},
        {**GOOD[0], "open": 1.0},  # half a bar
        {**GOOD[1], "low": 3.0},  # impossible bar
        {**GOOD[0], "volume": -5},
        [1, 2, 3],
    ],
)
def test_a_doubtful_row_sends_its_block_the_exact_way(tmp_path: Path, bad: object):
    path = write_jsonl(tmp_path / "t.jsonl", [*GOOD, bad])
    (block,) = read_blocks(path, NOW, SKEW)
    assert block.batch is None
    assert block.records == list(read_records(path))


def test_malformed_line_goes_the_exact_way(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(orjson.dumps(GOOD[0]) + b"\n{not json\n")
    (block,) = read_blocks(path, NOW, SKEW)
    assert block.batch is None and block.records == list(read_records(path))


def test_parquet_with_aware_and_naive_times(tmp_path: Path):
    times = [datetime(2024, 3, 4, 10, m, tzinfo=UTC) for m in range(3)]
    columns = {
        "source": ["av"] * 3,
        "asset_type": ["stock"] * 3,
        "symbol": ["IBM", "MSFT", "IBM"],
        "price": [1.0, 2.0, 3.0],
        "volume": [None, 1.0, 2.0],
    }
    for name, ts in (
        ("aware", pa.array(times, pa.timestamp("us", tz="UTC"))),
        ("naive", pa.array([t.replace(tzinfo=None) for t in times], pa.timestamp("ms"))),
    ):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({**columns, "event_time": ts}), path)
        (block,) = read_blocks(path, NOW, SKEW)
        assert block.batch is not None
        same(block.batch, expected(path))


def test_csv_always_goes_the_exact_way(tmp_path: Path):
    path = tmp_path / "t.csv"
    path.write_text(
        "source,asset_type,symbol,event_time,price,volume\nav,stock,IBM,2024-03-04T10:00:00Z,1.5,\n"
    )
    (block,) = read_blocks(path, NOW, SKEW)
    assert block.batch is None and block.records == list(read_records(path))
