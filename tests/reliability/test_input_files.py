"""Hostile input files (issue 14, class 1): one record can never stop a replay.

Times beyond what Python's datetime holds (year 1 with a positive offset, 9999-12-31 with a
negative one, a huge negative epoch, 9999-12-31 as event and ingest time), in JSON Lines, CSV
and Parquet; a CSV field over the csv module's limit; Parquet timestamps with nanoseconds or past
year 9999; a Parquet row group that does not decode. Each is a dead letter and the rest of the
file gives the rows a clean file gives. A file that cannot be read at all (empty, truncated or
corrupt Parquet, a compressed file) is refused before anything is stored, with an error naming
the file and no traceback.

The replays run the real CLI (`tickwatch replay`) on files in a temporary folder.
"""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from tests.ledger import Ledger
from tickwatch.cli import app

AREA = "input files (replay)"
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
runner = CliRunner()


def valid_rows(symbol: str = "AAPL", windows: int = 12, asset_type: str = "stock") -> list[dict]:
    """Two ticks per 5-minute window from 14:30Z: 100 at +10 s, then a small move at +3 min."""
    rows: list[dict[str, Any]] = []
    for i in range(windows):
        at = START + timedelta(minutes=5 * i)
        move = (0.1, -0.2, 0.15)[i % 3]
        rows.append(_row(symbol, asset_type, at + timedelta(seconds=10), 100.0, 10))
        rows.append(_row(symbol, asset_type, at + timedelta(minutes=3), 100 + move, 5))
    return rows


def _row(symbol: str, asset_type: str, at: datetime, price: float, volume: float) -> dict:
    return {
        "source": "file",
        "asset_type": asset_type,
        "symbol": symbol,
        "event_time": at.isoformat(),
        "price": price,
        "volume": volume,
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


CSV_COLUMNS = ["source", "asset_type", "symbol", "event_time", "ingest_time", "price", "volume"]


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8", header: bool = True) -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, CSV_COLUMNS, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(rows)
    return path


def replay(
    data_dir: Path, *paths: Path, exact: bool = False, env: dict[str, str] | None = None
) -> Result:
    """`tickwatch replay`; `exact` paces at a speed no file reaches, which takes the exact lane."""
    args = ["replay", *map(str, paths), "--data-dir", str(data_dir), "--json"]
    return runner.invoke(app, [*args, "--speed", "1e12"] if exact else args, env=env)


def summary(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def rows(data_dir: Path, query: str) -> list[tuple[Any, ...]]:
    db = data_dir / "tickwatch.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        return con.execute(query).fetchall()


WINDOWS = "select * from clean_market_data order by symbol, window_start"
LETTERS = "select kind, reason from dead_letters order by reason"


def outcome(result: Result, data_dir: Path) -> str:
    """What a replay did, as the ledger shows it."""
    windows, letters = len(rows(data_dir, WINDOWS)), len(rows(data_dir, LETTERS))
    return f"exit {result.exit_code}, {windows} windows, {letters} dead letters"


def refused(result: Result, name: str) -> str:
    """The CLI's error text after checking it is a clean refusal that names the file."""
    text = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2, (text, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert name in "".join(text.split()), text
    return text


@pytest.fixture(scope="module")
def clean_windows(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    folder = tmp_path_factory.mktemp("clean")
    summary(replay(folder / "out", write_jsonl(folder / "clean.jsonl", valid_rows())))
    windows = rows(folder / "out", WINDOWS)
    assert len(windows) == 12
    return windows


def interleave(good: list[Any], bad: list[Any]) -> list[Any]:
    """`bad` spread through `good`, the first before any good record."""
    out: list[Any] = []
    step = max(len(good) // max(len(bad), 1), 1)
    for i, record in enumerate(good):
        if i % step == 0 and bad:
            out.append(bad.pop(0))
        out.append(record)
    return out + bad


base = valid_rows()[5]
HOSTILE_TIMES: dict[str, dict[str, Any]] = {
    "year 1 with a positive offset": {"event_time": "0001-01-01T00:00:00+01:00"},
    "9999-12-31 with a negative offset": {"event_time": "9999-12-31T23:59:59-01:00"},
    "large negative epoch (number)": {"event_time": -99_999_999_999},
    "large negative epoch (text)": {"event_time": "-99999999999"},
    "ingest_time near 9999-12-31": {"ingest_time": "9999-12-31T23:59:59.999999+00:00"},
    "event and ingest time 9999-12-31": {
        "event_time": "9999-12-31T23:59:59Z",
        "ingest_time": "9999-12-31T23:59:59Z",
    },
    "ingest_time year 1 with a positive offset": {"ingest_time": "0001-01-01T00:00:00+05:00"},
}


@pytest.mark.parametrize("exact", [False, True], ids=["fast lane", "exact lane"])
@pytest.mark.parametrize("case", list(HOSTILE_TIMES))
def test_times_beyond_datetime_are_dead_letters_in_json_lines(
    ledger: Ledger, tmp_path: Path, clean_windows: list[tuple[Any, ...]], case: str, exact: bool
):
    bad = [{**base, **HOSTILE_TIMES[case], "note": i} for i in range(3)]
    path = write_jsonl(tmp_path / "t.jsonl", interleave(valid_rows(), bad))
    result = replay(tmp_path / "out", path, exact=exact)
    letters = rows(tmp_path / "out", LETTERS)
    expected = "exit 0, 12 windows, 3 dead letters"
    ledger.record(AREA, f"JSON Lines: {case}", 3, expected, outcome(result, tmp_path / "out"))
    assert summary(result)["rejected"] == 3
    assert [kind for kind, _ in letters] == ["invalid"] * 3
    assert rows(tmp_path / "out", WINDOWS) == clean_windows


@pytest.mark.parametrize("case", list(HOSTILE_TIMES))
def test_times_beyond_datetime_are_dead_letters_in_csv(
    ledger: Ledger, tmp_path: Path, clean_windows: list[tuple[Any, ...]], case: str
):
    bad = [{**base, **HOSTILE_TIMES[case], "volume": 7 + i} for i in range(3)]
    path = write_csv(tmp_path / "t.csv", interleave(valid_rows(), bad))
    result = replay(tmp_path / "out", path)
    expected = "exit 0, 12 windows, 3 dead letters"
    ledger.record(AREA, f"CSV: {case}", 3, expected, outcome(result, tmp_path / "out"))
    assert summary(result)["rejected"] == 3
    assert rows(tmp_path / "out", WINDOWS) == clean_windows


def test_csv_field_over_the_csv_module_limit_is_one_dead_letter(
    ledger: Ledger, tmp_path: Path, clean_windows: list[tuple[Any, ...]]
):
    huge = {**base, "symbol": "X" * 200_000}
    path = write_csv(tmp_path / "t.csv", interleave(valid_rows(), [huge]))
    result = replay(tmp_path / "out", path)
    letters = rows(tmp_path / "out", LETTERS)
    expected = "exit 0, 12 windows, 1 dead letters"
    case = "CSV: field over the csv module's limit"
    ledger.record(AREA, case, 1, expected, outcome(result, tmp_path / "out"))
    assert summary(result)["rejected"] == 1
    assert letters == [("invalid", "CSV line unreadable: field larger than field limit (131072)")]
    assert rows(tmp_path / "out", WINDOWS) == clean_windows


def parquet_table(records: list[dict], event: pa.Array, ingest: pa.Array | None = None) -> pa.Table:
    columns = {
        name: [r[name] for r in records] for name in ("source", "asset_type", "symbol", "price")
    }
    table = pa.table({**columns, "volume": [float(r["volume"]) for r in records]})
    table = table.append_column("event_time", event)
    return table if ingest is None else table.append_column("ingest_time", ingest)


def _micros(record: dict) -> int:
    return (datetime.fromisoformat(record["event_time"]) - datetime(1970, 1, 1, tzinfo=UTC)) // (
        timedelta(microseconds=1)
    )


YEAR_10000_S = 253_402_300_800  # 10000-01-01T00:00:00Z in epoch seconds


@pytest.mark.parametrize("case", ["nanoseconds", "event year 10000", "ingest year 10000"])
@pytest.mark.parametrize("exact", [False, True], ids=["fast lane", "exact lane"])
def test_parquet_timestamps_python_cannot_hold_are_dead_letters(
    ledger: Ledger, tmp_path: Path, clean_windows: list[tuple[Any, ...]], case: str, exact: bool
):
    good = valid_rows()
    records = interleave(good, [dict(base) for _ in range(3)])
    hostile = [i for i, r in enumerate(records) if all(r is not g for g in good)]
    assert len(hostile) == 3
    if case == "nanoseconds":
        ns = [_micros(r) * 1000 + (7 + i if i in hostile else 0) for i, r in enumerate(records)]
        table = parquet_table(records, pa.array(ns, pa.timestamp("ns", tz="UTC")))
    elif case == "event year 10000":
        seconds = [
            YEAR_10000_S + i if i in hostile else _micros(r) // 10**6 for i, r in enumerate(records)
        ]
        table = parquet_table(records, pa.array(seconds, pa.timestamp("s")))
    else:
        micros = [_micros(r) for r in records]
        ingest = [YEAR_10000_S * 10**6 + i if i in hostile else m for i, m in enumerate(micros)]
        table = parquet_table(
            records,
            pa.array(micros, pa.timestamp("us", tz="UTC")),
            pa.array(ingest, pa.timestamp("us")),
        )
    pq.write_table(table, tmp_path / "t.parquet")
    result = replay(tmp_path / "out", tmp_path / "t.parquet", exact=exact)
    expected = "exit 0, 12 windows, 3 dead letters"
    found = outcome(result, tmp_path / "out")
    ledger.record(AREA, f"Parquet: timestamps with {case}", 3, expected, found)
    assert summary(result)["rejected"] == 3
    assert rows(tmp_path / "out", WINDOWS) == clean_windows


@pytest.mark.parametrize("exact", [False, True], ids=["fast lane", "exact lane"])
def test_parquet_row_group_that_does_not_decode_is_one_dead_letter_and_the_rest_goes_through(
    ledger: Ledger, tmp_path: Path, exact: bool
):
    good = valid_rows(windows=12)
    micros = [_micros(r) for r in good]
    table = parquet_table(good, pa.array(micros, pa.timestamp("us", tz="UTC")))
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=8, compression="snappy")
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 3
    chunk = meta.row_group(1).column(table.column_names.index("price"))
    data = bytearray(path.read_bytes())
    start = chunk.data_page_offset
    data[start : start + chunk.total_compressed_size] = b"\xff" * chunk.total_compressed_size
    path.write_bytes(bytes(data))
    expected_dir = tmp_path / "expected"
    summary(replay(expected_dir, write_jsonl(tmp_path / "rest.jsonl", good[:8] + good[16:])))

    result = replay(tmp_path / "out", path, exact=exact)
    letters = rows(tmp_path / "out", LETTERS)
    expected = "exit 0, 8 windows, 1 dead letters"
    case = "Parquet: a row group that does not decode"
    ledger.record(AREA, case, 1, expected, outcome(result, tmp_path / "out"))
    assert summary(result)["rejected"] == 1
    assert [reason.split(":")[0] for _, reason in letters] == ["Parquet row group unreadable"]
    assert rows(tmp_path / "out", WINDOWS) == rows(expected_dir, WINDOWS)
    assert len(rows(expected_dir, WINDOWS)) == 8


def _parquet_bytes(tmp_path: Path) -> bytes:
    good = valid_rows()
    table = parquet_table(good, pa.array([_micros(r) for r in good], pa.timestamp("us", tz="UTC")))
    pq.write_table(table, tmp_path / "whole.parquet")
    return (tmp_path / "whole.parquet").read_bytes()


UNREADABLE_FILES = {
    "empty.parquet": lambda whole: b"",
    "truncated.parquet": lambda whole: whole[: len(whole) // 2],
    "corrupt-footer.parquet": lambda whole: whole[:-12] + b"\x00" * 8 + whole[-4:],
    "not-parquet.parquet": lambda whole: b"source,asset_type\n" * 40,
    "ticks.jsonl.gz": lambda whole: gzip.compress(b'{"source": "file"}\n'),
    "gzip-inside.jsonl": lambda whole: gzip.compress(b'{"source": "file"}\n'),
    "gzip-inside.csv": lambda whole: gzip.compress(b"source,asset_type\n"),
}


@pytest.mark.parametrize("name", list(UNREADABLE_FILES))
def test_unreadable_file_is_refused_by_name_before_anything_is_stored(
    ledger: Ledger, tmp_path: Path, name: str
):
    good = write_jsonl(tmp_path / "good.jsonl", valid_rows())
    bad = tmp_path / name
    bad.write_bytes(UNREADABLE_FILES[name](_parquet_bytes(tmp_path)))
    result = replay(tmp_path / "out", good, bad)
    named = name in "".join(result.output.split())
    found = f"{outcome(result, tmp_path / 'out')}, {'file named' if named else 'file not named'}"
    case = "unreadable file (empty, truncated, corrupt Parquet; compressed)"
    ledger.record(AREA, case, 1, "exit 2, 0 windows, 0 dead letters, file named", found)
    refused(result, name)
    assert rows(tmp_path / "out", WINDOWS) == []


def test_an_error_quoting_the_file_shows_its_text_literally(ledger: Ledger, tmp_path: Path):
    """A refusal quotes the file's first line; text like `[/x]` is not console markup."""
    path = tmp_path / "markup.csv"
    path.write_text("file,stock,[red]AAPL[/x],2024-03-04T14:30:10Z,100,1\n")
    result = replay(tmp_path / "out", path)
    found = outcome(result, tmp_path / "out")
    ledger.record(AREA, "refusal quoting console markup from the file", 1,
                  "exit 2, 0 windows, 0 dead letters", found)  # fmt: skip
    assert "[red]AAPL[/x]" in refused(result, "markup.csv")
