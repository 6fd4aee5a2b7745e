"""Ticks from files: JSON Lines (.jsonl, .ndjson, .json), CSV (.csv) or Parquet (.parquet).

Records keep the replay format; validation is left to `tickwatch.normalize`, so a malformed
line travels on as raw bytes and ends up as a dead letter with its reason. With `speed` set,
records are paced by event time (`speed` times real time); otherwise they go as fast as the
pipeline takes them.
"""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tickwatch.errors import InvalidTick, SourceError
from tickwatch.normalize import parse_time
from tickwatch.sources import Record, SourceHealth

BATCH = 5000


def read_records(path: Path) -> Iterator[Record]:
    """Every record of one file, in file order."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        with path.open("rb") as handle:
            yield from json_records(handle)
    elif suffix == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            yield from csv.DictReader(handle)
    elif suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
            yield from _utc_timestamps(batch).to_pylist()
    else:
        raise SourceError(f"{path}: unknown file type {suffix!r}; use .jsonl, .csv or .parquet")


def json_records(lines: Iterable[bytes]) -> Iterator[Record]:
    """One record per non-blank JSON line; a line that is not a JSON object stays bytes."""
    for line in lines:
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield line.rstrip(b"\r\n")
            continue
        yield value if isinstance(value, dict) else line.rstrip(b"\r\n")


def _utc_timestamps(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Parquet timestamps without a zone are UTC by Arrow's convention: say so explicitly."""
    columns = [
        column.cast(pa.timestamp(column.type.unit, tz="UTC"))
        if pa.types.is_timestamp(column.type) and column.type.tz is None
        else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def count_records(path: Path) -> int:
    """How many records `read_records` will yield, cheaply (for progress bars)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0) if suffix == ".csv" else lines


class ReplaySource:
    name = "replay"

    def __init__(
        self,
        paths: list[Path],
        speed: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        for path in paths:
            if not path.is_file():
                raise SourceError(f"{path}: no such file to replay")
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
