"""Ticks from files: JSON Lines (.jsonl, .ndjson, .json), CSV (.csv) or Parquet (.parquet).

Records keep the replay format; validation is left to `tickwatch.normalize`, so a malformed
line travels on as raw bytes and ends up as a dead letter with its reason. With `speed` set,
records are paced by event time (`speed` times real time); otherwise they go as fast as the
pipeline takes them.

Two levels of failure, so that one bad record never stops a replay and a bad file never
half-runs:
- file level (`check_file`, before any record is read): a missing, unreadable, compressed or
  unknown kind of file, a Parquet file without a readable footer (empty, truncated, not
  Parquet), a CSV that is not UTF-8 (guessing an encoding would merge distinct symbols into one
  replacement character) or whose first line is not a header (or names a column twice).
  `SourceError` names the file.
- record level: whatever a reader cannot represent (a CSV line over the csv module's field
  limit, a Parquet timestamp past year 9999 or with nanoseconds, a Parquet row group that does
  not decode) becomes a `normalize.UnreadableRecord` or `normalize.Unreadable` value, rejected
  with the reader's reason and kept as a dead letter; the rest of the file goes through.

A UTF-8 byte order mark at the start of a file, or of a JSON line (files joined with `cat`), is
skipped by every reader, the fast lane too.
"""

from __future__ import annotations

import codecs
import csv
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tickwatch.errors import InvalidTick, SourceError
from tickwatch.normalize import Unreadable, UnreadableRecord, parse_time
from tickwatch.sources import Record, SourceHealth

BATCH = 5000
BOM = codecs.BOM_UTF8
KINDS = {".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
# the columns of the replay format: a CSV whose first line names none of them has no header
COLUMNS = frozenset({
    "source", "asset_type", "symbol", "event_time", "ingest_time", "price", "volume",
    "open", "high", "low", "close",
})  # fmt: skip
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_RANGE = (
    (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1),
    (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1),
)
_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


def file_kind(path: Path) -> str:
    """`json`, `csv` or `parquet`, from the file name; SourceError for anything else."""
    suffix = path.suffix.lower()
    kind = KINDS.get(suffix)
    if kind is not None:
        return kind
    if suffix in (".gz", ".bz2", ".xz", ".zst", ".zip"):
        raise SourceError(
            f"{path}: compressed files are not read; decompress it first "
            f"(e.g. `gunzip -k {path.name}`) and replay the .jsonl, .csv or .parquet inside"
        )
    raise SourceError(f"{path}: unknown file type {suffix!r}; use .jsonl, .csv or .parquet")


def check_file(path: Path) -> None:
    """Refuse a file that cannot be replayed, before any of its records is read."""
    if not path.is_file():
        raise SourceError(f"{path}: no such file to replay")
    kind = file_kind(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from None
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            raise SourceError(
                f"{path}: the file is {name}-compressed; decompress it first and replay the "
                f"plain {kind} file"
            )
    if kind == "parquet":
        _open_parquet(path)
    elif kind == "csv":
        _check_csv(path)


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SourceError(
            f"{path}: not a readable Parquet file ({str(exc)[:200]}); it may be empty, "
            "truncated or not Parquet: write it again"
        ) from None


def _check_csv(path: Path) -> None:
    """UTF-8 throughout, and a header line naming at least one replay column."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = max(exc.start, 0)
                line += chunk[:at].count(b"\n")
                raise SourceError(
                    f"{path}: line {line} is not UTF-8 (byte "
                    f"{offset + at}); tickwatch reads UTF-8 only rather than guess an encoding "
                    "and merge distinct symbols: convert the file, e.g. "
                    f"`iconv -f latin1 -t utf-8 {path.name}`"
                ) from None
            if not chunk:
                break
            line += chunk.count(b"\n")
            offset += len(chunk)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            first = next(csv.reader(handle), [])
        except csv.Error as exc:
            raise SourceError(f"{path}: the header line cannot be read ({exc})") from None
    names = [name.strip() for name in first]
    if first and not COLUMNS.intersection(names):
        shown = ",".join(first)[:80]
        raise SourceError(
            f"{path}: the first line ({shown!r}) names no column; a CSV needs a header line "
            "such as `source,asset_type,symbol,event_time,price,volume`"
        )
    twice = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
    if twice:
        raise SourceError(f"{path}: the header names {', '.join(twice)} more than once")


def read_records(path: Path) -> Iterator[Record]:
    """Every record of one file, in file order (`check_file` first for file-level errors)."""
    kind = file_kind(path)
    try:
        if kind == "json":
            with path.open("rb") as handle:
                yield from json_records(without_bom(handle))
        elif kind == "csv":
            yield from csv_records(path)
        else:
            for part in parquet_tables(path):
                if isinstance(part, UnreadableRecord):
                    yield part
                else:
                    yield from parquet_records(part)
    except (OSError, UnicodeDecodeError) as exc:  # the file changed or failed after the check
        raise SourceError(f"{path}: reading failed ({exc})") from None


def without_bom(lines: Iterable[bytes]) -> Iterator[bytes]:
    """`lines`, the first one without a UTF-8 byte order mark."""
    first = True
    for line in lines:
        if first:
            first = False
            line = line.removeprefix(BOM)
        yield line


def json_records(lines: Iterable[bytes]) -> Iterator[Record]:
    """One record per non-blank JSON line; a line that is not a JSON object stays bytes.

    A byte order mark opening a line is skipped (files joined with `cat` carry one per file).
    """
    for line in lines:
        line = line.removeprefix(BOM)
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield line.rstrip(b"\r\n")
            continue
        yield value if isinstance(value, dict) else line.rstrip(b"\r\n")


def csv_records(path: Path) -> Iterator[Record]:
    """One record per CSV row, keyed by the header's names.

    A row whose fields do not line up with the header (an unquoted comma in a name shifts every
    later column) or that the csv module cannot read is an `UnreadableRecord`.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                where = {"file": path.name, "line": reader.line_num}
                yield UnreadableRecord(where, f"CSV line unreadable: {exc}")
                continue
            if not row:
                continue
            record: dict[str, object] = dict(zip(header, row, strict=False))
            if len(row) != len(header):
                record.update(line=reader.line_num, fields=row)
                yield UnreadableRecord(
                    record, f"CSV row has {len(row)} fields, the header {len(header)}"
                )
                continue
            yield record


def parquet_tables(path: Path) -> Iterator[pa.Table | UnreadableRecord]:
    """Each row group of a Parquet file as a table, or as one dead letter if it does not decode
    (its rows are lost, the later groups still go through)."""
    file = _open_parquet(path)
    for i in range(file.num_row_groups):
        try:
            yield file.read_row_group(i)
        except (pa.ArrowException, OSError, ValueError) as exc:
            rows = file.metadata.row_group(i).num_rows
            where = {"file": path.name, "row_group": i, "rows": rows}
            yield UnreadableRecord(where, f"Parquet row group unreadable: {str(exc)[:200]}")


def parquet_records(table: pa.Table) -> list[Record]:
    """Rows of `table` as records; a value Python cannot hold is an `Unreadable` value."""
    columns = {
        name: _python_values(column)
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    if not columns:
        return [{} for _ in range(table.num_rows)]
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _python_values(column: pa.ChunkedArray) -> list[object]:
    if pa.types.is_timestamp(column.type):
        return _timestamps(column)
    try:
        values: list[object] = column.to_pylist()
    except (pa.ArrowException, OverflowError, ValueError):
        values = [_scalar(value) for value in column]
    return values


def _scalar(value: pa.Scalar) -> object:
    try:
        return value.as_py()
    except (pa.ArrowException, OverflowError, ValueError):
        return Unreadable(f"<{value.type}>", f"cannot be read as {value.type}")


def _timestamps(column: pa.ChunkedArray) -> list[object]:
    """Aware UTC datetimes (Arrow stores instants; a column without a zone is UTC by Arrow's
    convention), exact to the microsecond; others become `Unreadable` with the reason."""
    unit = column.type.unit
    raw: list[int | None] = column.cast(pa.int64()).to_pylist()
    low, high = _US_RANGE
    values: list[object] = []
    for value in raw:
        if value is None:
            values.append(None)
            continue
        if unit == "ns":
            us, rest = divmod(value, 1000)
        else:
            us, rest = value * _PER_UNIT[unit], 0
        if rest or not low <= us <= high:
            text = f"{np.datetime64(value, unit)}Z"
            reason = (
                "has nanoseconds; tickwatch keeps times to the microsecond"
                if rest
                else "is out of range (years 1 to 9999)"
            )
            values.append(Unreadable(text, reason))
        else:
            values.append(_EPOCH + timedelta(microseconds=us))
    return values


def utc_timestamps(table: pa.Table) -> pa.Table:
    """Parquet timestamps without a zone are UTC by Arrow's convention: say so explicitly."""
    columns = [
        column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        if pa.types.is_timestamp(column.type) and column.type.tz is None
        else column
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def count_records(path: Path) -> int:
    """How many records `read_records` will yield, cheaply (for progress bars)."""
    if file_kind(path) == "parquet":
        return int(_open_parquet(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0) if path.suffix.lower() == ".csv" else lines


class ReplaySource:
    name = "replay"

    def __init__(
        self,
        paths: list[Path],
        speed: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        for path in paths:
            check_file(path)
        self.paths = paths
        self.speed = speed
        self.monotonic = monotonic
        self.health = SourceHealth()

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]:
        batch: list[Record] = []
        first: datetime | None = None
        began = self.monotonic()
        for path in self.paths:
            for record in read_records(path):
                if stop.is_set():
                    return
                if self.speed is not None and isinstance(record, dict):
                    moment = _event_time(record)
                    if moment is not None:
                        first = first or moment
                        due = (moment - first).total_seconds() / self.speed
                        wait = due - (self.monotonic() - began)
                        if wait > 0.005:
                            if batch:
                                yield batch
                                batch = []
                            if stop.wait(wait):
                                return
                batch.append(record)
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch


def _event_time(record: dict[str, object]) -> datetime | None:
    try:
        return parse_time(record.get("event_time"))
    except InvalidTick:
        return None
