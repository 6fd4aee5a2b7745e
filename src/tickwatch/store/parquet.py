"""The Parquet lake: raw ticks and clean rows, partitioned by UTC date (hive style).

    lake/raw_ticks/date=2024-03-08/part-<n>.parquet
    lake/clean_market_data/date=2024-03-08/part-<n>.parquet

Writes append one file per batch and partition. `compact` rewrites a partition as one file
with each key once (the latest write wins), so after a run the lake holds exactly one row per
key however often the same input was replayed; `read` applies the same rule to partitions that
are not compacted yet.

A file that cannot be read (truncated, corrupt, not this table's schema) must not stop every
later run: compaction moves it to `lake/_quarantine/<table>/date=.../` and logs an error
naming it (its rows are no longer in the lake), `read` skips it with a warning, and
`unreadable_files` (the `parquet` check) reads every file to find such files before that.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickwatch.model import CLEAN_COLUMNS, CLEAN_MARKET_DATA, EPOCH, Tick, Window
from tickwatch.store.alert_rows import LAKE_KEYS, LAKE_PARTITION_BY, LAKE_SCHEMAS
from tickwatch.store.repeats import KeyWatch
from tickwatch.store.rows import window_values
from tickwatch.store.sql import clean_market_data

log = logging.getLogger(__name__)

RAW_TICKS = "raw_ticks"
QUARANTINE = "_quarantine"  # lake/_quarantine/<table>/date=.../: files compaction could not read
_UNREADABLE = (pa.ArrowException, OSError, ValueError)
_TS = pa.timestamp("us", tz="UTC")
_DAY_US = 86_400_000_000

SCHEMAS: dict[str, pa.Schema] = {
    RAW_TICKS: pa.schema(
        [
            ("source", pa.string()),
            ("asset_type", pa.string()),
            ("symbol", pa.string()),
            ("event_time", _TS),
            ("ingest_time", _TS),
            ("price", pa.float64()),
            ("volume", pa.float64()),
            ("open", pa.float64()),
            ("high", pa.float64()),
            ("low", pa.float64()),
            ("close", pa.float64()),
        ]
    ),
    CLEAN_MARKET_DATA: pa.schema(
        [
            (
                name,
                _TS
                if name in ("window_start", "window_end")
                else pa.string()
                if name in ("symbol", "asset_type")
                else pa.int64()
                if name == "tick_count"
                else pa.float64(),
            )
            for name in CLEAN_COLUMNS
        ]
    ),
}
_CLEAN_ORDER = tuple(c.name for c in clean_market_data.columns)  # window_values' order
_CLEAN_BY_NAME = dict(
    zip(SCHEMAS[CLEAN_MARKET_DATA].names, SCHEMAS[CLEAN_MARKET_DATA].types, strict=True)
)
KEYS = {
    RAW_TICKS: ("source", "symbol", "event_time"),
    CLEAN_MARKET_DATA: ("symbol", "window_start"),
}
_PARTITION_BY = {RAW_TICKS: "event_time", CLEAN_MARKET_DATA: "window_start"}
SCHEMAS.update(LAKE_SCHEMAS)
KEYS.update(LAKE_KEYS)
_PARTITION_BY.update(LAKE_PARTITION_BY)


def _same(value: datetime) -> datetime:
    return value


def _tick_row(tick: Tick) -> dict[str, Any]:
    return {
        "source": tick.source,
        "asset_type": tick.asset_type.value,
        "symbol": tick.symbol,
        "event_time": tick.event_time,
        "ingest_time": tick.ingest_time,
        "price": tick.price,
        "volume": tick.volume,
        "open": tick.open,
        "high": tick.high,
        "low": tick.low,
        "close": tick.close,
    }


class ParquetLake:
    """Buffers rows and writes them in files of up to `buffer_rows` (or on `flush`)."""

    def __init__(self, root: Path, buffer_rows: int = 100_000) -> None:
        self.root = root
        self.buffer_rows = buffer_rows
        self._buffers: dict[str, list[pa.Table]] = defaultdict(list)
        self._sequence = itertools.count()
        self.touched: dict[str, set[str]] = defaultdict(set)
        self.error: str | None = None
        self.quarantined: list[Path] = []  # where the unreadable files went, this process
        self._keys = KeyWatch()
        self._once: set[str] = set()  # raw tick days this lake started, each key once so far
        self._doubtful: set[str] = set()  # raw tick days compaction must check

    def write_ticks(self, ticks: Sequence[Tick]) -> None:
        if ticks:
            rows = [_tick_row(t) for t in ticks]
            self._buffer(RAW_TICKS, pa.Table.from_pylist(rows, schema=SCHEMAS[RAW_TICKS]))

    def write_windows(self, windows: Sequence[Window] | pa.Table) -> None:
        """Windows as columns (value tuples transposed), not one dict per window; or their
        rows already as an Arrow table with the `clean_market_data` schema."""
        if isinstance(windows, pa.Table):
            if windows.num_rows:
                self._buffer(CLEAN_MARKET_DATA, windows.cast(SCHEMAS[CLEAN_MARKET_DATA]))
        elif windows:
            columns = zip(*(window_values(w, _same) for w in windows), strict=True)
            table = pa.Table.from_arrays(
                [
                    pa.array(c, _CLEAN_BY_NAME[n])
                    for n, c in zip(_CLEAN_ORDER, columns, strict=True)
                ],
                names=list(_CLEAN_ORDER),
            )
            self._buffer(CLEAN_MARKET_DATA, table.select(SCHEMAS[CLEAN_MARKET_DATA].names))

    def write_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        """Plain rows of a table registered in SCHEMAS (alerts, market events)."""
        if rows:
            self._buffer(table, pa.Table.from_pylist(list(rows), schema=SCHEMAS[table]))

    def write_tick_table(self, ticks: pa.Table) -> None:
        """Raw ticks already in columns (the replay fast lane): written at once, one file per
        day, with the `raw_ticks` schema.

        A day this lake starts (no files before) whose ticks never repeat an earlier key
        (`repeats.KeyWatch`; a repeat right after its tick replaces it here) is written in
        compressed block files and never compacted: it holds each key once already. Other
        days are written uncompressed, since compaction rewrites them (about 60% of their
        write time saved)."""
        ticks = ticks.select(SCHEMAS[RAW_TICKS].names).cast(SCHEMAS[RAW_TICKS])
        keep, doubtful = self._keys.scan(ticks)
        if not keep.all():
            ticks = ticks.filter(keep)
            doubtful = doubtful[keep]
        numbers = ticks["event_time"].combine_chunks().cast(pa.int64()).to_numpy() // _DAY_US
        days = {_day(n) for n in np.unique(numbers).tolist()}
        for day in days - self._once - self._doubtful:
            folder = self.root / RAW_TICKS / f"date={day}"
            started = folder.is_dir() and any(folder.glob("part-*.parquet"))
            (self._doubtful if started else self._once).add(day)
        self._doubtful.update(_day(n) for n in np.unique(numbers[doubtful]).tolist())
        once = not days & self._doubtful
        if self.error is None:
            try:
                self._write(RAW_TICKS, [ticks], "snappy" if once else "none", once=once)
                return
            except OSError as exc:  # a full disk: hold the rows like `flush` does
                self._failed(exc, ticks.num_rows)
        self._buffers[RAW_TICKS].append(ticks)

    def _buffer(self, table: str, rows: pa.Table) -> None:
        buffer = self._buffers[table]
        buffer.append(rows)
        if sum(t.num_rows for t in buffer) >= self.buffer_rows and self.error is None:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered. A failing disk (full, read-only) keeps the rows buffered
        and records the error; the next flush retries, so nothing is lost once it recovers."""
        try:
            for table, rows in list(self._buffers.items()):
                self._write(table, rows)
                self._buffers[table] = []
        except OSError as exc:
            self._failed(exc)
            return
        if self.error is not None:
            log.warning("lake writes to %s recovered", self.root)
            self.error = None

    def _failed(self, exc: OSError, more: int = 0) -> None:
        if self.error is None:
            log.error(
                "lake write to %s failed, holding %d rows: %s", self.root, self.buffered + more, exc
            )
        self.error = f"{type(exc).__name__}: {exc}"

    @property
    def buffered(self) -> int:
        return sum(t.num_rows for parts in self._buffers.values() for t in parts)

    @property
    def held(self) -> int:
        """Rows still buffered, counted as the lake would keep them (one per key)."""
        return sum(
            _latest_per_key(pa.concat_tables(parts), KEYS[table]).num_rows
            for table, parts in self._buffers.items()
            if parts
        )

    def _write(
        self, table: str, parts: list[pa.Table], compression: str = "snappy", once: bool = False
    ) -> None:
        """One file per UTC day present, days in order of first appearance, rows in order."""
        if not parts:
            return
        rows = pa.concat_tables(parts)
        # UTC day number; times before 1970 never reach the lake (normalize rejects them)
        days = pc.divide(rows[_PARTITION_BY[table]].cast(pa.int64()), _DAY_US)
        for number in pc.unique(days).to_pylist():
            day = _day(number)
            if table == RAW_TICKS and not once:
                self._doubtful.add(day)  # not written once: compaction checks its keys
            folder = self.root / table / f"date={day}"
            folder.mkdir(parents=True, exist_ok=True)
            # time_ns then a counter: names sort in write order, which `read` relies on
            name = f"part-{time.time_ns():020d}-{next(self._sequence):06d}.parquet"
            part = rows.filter(pc.equal(days, number))
            _write_file(part, folder / name, compression)
            self.touched[table].add(day)

    def partitions(self, table: str) -> list[str]:
        folder = self.root / table
        if not folder.exists():
            return []
        return sorted(p.name.removeprefix("date=") for p in folder.iterdir() if p.is_dir())

    def read(self, table: str, days: Iterable[str] | None = None) -> pa.Table:
        """Rows of `table` (all days by default), one per key, latest write winning."""
        parts: list[pa.Table] = []
        for day in self.partitions(table) if days is None else days:
            folder = self.root / table / f"date={day}"
            for file in sorted(folder.glob("part-*.parquet")):
                try:
                    parts.append(_read(file, table))
                except _UNREADABLE as exc:
                    log.warning("skipping unreadable lake file %s: %s", file, _reason(exc))
        if not parts:
            return SCHEMAS[table].empty_table()
        return _latest_per_key(pa.concat_tables(parts), KEYS[table])

    def compact(self, table: str, days: Iterable[str] | None = None) -> None:
        """Rewrite each partition as one file holding each key once; a file that cannot be
        read is quarantined (see the module docstring), the others are compacted."""
        for day in sorted(self.touched.pop(table, set()) if days is None else days):
            if table == RAW_TICKS and day in self._once and day not in self._doubtful:
                continue  # written once, each key once (`write_tick_table`)
            folder = self.root / table / f"date={day}"
            files = sorted(folder.glob("part-*.parquet"))
            if len(files) == 1:
                try:
                    if not self._has_duplicates(files, table):
                        continue
                except _UNREADABLE as exc:
                    self._quarantine(table, files[0], exc)
                    continue
            # text columns read as dictionaries: sorting and moving small integer codes is
            # about twice as fast as moving the strings; the file gets the plain schema back
            parts, read = [], []
            for file in files:
                try:
                    parts.append(_read(file, table, dictionaries=True))
                    read.append(file)
                except _UNREADABLE as exc:
                    self._quarantine(table, file, exc)
            if not parts:
                continue
            merged = _compacted(pa.concat_tables(parts).unify_dictionaries(), KEYS[table])
            name = f"part-{time.time_ns():020d}-{next(self._sequence):06d}.parquet"
            try:
                _write_file(merged.cast(SCHEMAS[table]), folder / name, "snappy")
            except OSError as exc:  # nothing lost: the partition keeps its files
                log.warning("could not compact %s (%s); its files stay as they are", folder, exc)
                continue
            for old in read:
                old.unlink()

    def _quarantine(self, table: str, file: Path, exc: BaseException) -> None:
        target = self.root / QUARANTINE / table / file.parent.name / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, target)
        self.quarantined.append(target)
        log.error(
            "lake file %s cannot be read (%s): moved to %s; its rows are no longer in the lake",
            file,
            _reason(exc),
            target,
        )

    def compact_all(self) -> None:
        self.flush()
        if self.error is not None:
            return
        for table in list(self.touched):
            self.compact(table)

    @staticmethod
    def _has_duplicates(files: list[Path], table: str) -> bool:
        if not files:
            return False
        data = pq.read_table(files[0], columns=list(KEYS[table]))
        unique: int = data.group_by(list(KEYS[table])).aggregate([]).num_rows
        return bool(unique != data.num_rows)


def _day(number: int) -> str:
    """The ISO date of UTC day `number` since the epoch."""
    return (EPOCH + timedelta(days=number)).date().isoformat()


def _write_file(rows: pa.Table, path: Path, compression: str) -> None:
    """Write `rows` to a hidden temporary file, then rename it: readers never see half a file,
    and a failed write (a full disk) leaves nothing behind."""
    temporary = path.with_name(f".{path.name}.tmp")
    # dictionaries for text only: prices and times are nearly all distinct, and trying a
    # dictionary on them made writes 2.5x slower and files 15% larger
    text = [f.name for f in rows.schema if pa.types.is_string(f.type)]
    try:
        pq.write_table(rows, temporary, compression=compression, use_dictionary=text)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def _read(file: Path, table: str, dictionaries: bool = False) -> pa.Table:
    """One lake file with exactly `table`'s columns (text as dictionaries when asked)."""
    schema = SCHEMAS[table]
    text = [f.name for f in schema if pa.types.is_string(f.type)] if dictionaries else None
    data = pq.read_table(file, read_dictionary=text)
    if data.schema.names != schema.names:
        raise ValueError(f"columns {data.schema.names} are not {table}'s {schema.names}")
    if dictionaries:
        wanted = pa.schema(
            [
                pa.field(f.name, pa.dictionary(pa.int32(), f.type))
                if pa.types.is_string(f.type)
                else f
                for f in schema
            ]
        )
        return data.cast(wanted)
    return data.cast(schema)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def unreadable_files(root: Path) -> list[tuple[Path, str]]:
    """Every lake file under `root` (both tables) that cannot be read to the last row group,
    with why. Reads each row group in turn, so memory stays at one row group."""
    found: list[tuple[Path, str]] = []
    for table in SCHEMAS:
        folder = root / table
        for file in sorted(folder.rglob("*.parquet")) if folder.is_dir() else []:
            try:
                handle = pq.ParquetFile(file)
                if handle.schema_arrow.names != SCHEMAS[table].names:
                    raise ValueError(f"columns {handle.schema_arrow.names} are not {table}'s")
                for group in range(handle.num_row_groups):
                    handle.read_row_group(group)
            except _UNREADABLE as exc:
                found.append((file, _reason(exc)))
    return found


def _latest_per_key(data: pa.Table, keys: Sequence[str]) -> pa.Table:
    indexed = data.append_column("_row", pa.array(range(data.num_rows), pa.int64()))
    latest = indexed.group_by(list(keys), use_threads=False).aggregate([("_row", "max")])
    rows = latest["_row_max"]
    return data.take(rows.take(pc.sort_indices(rows)))


def _compacted(data: pa.Table, keys: Sequence[str]) -> pa.Table:
    """Each key once, the latest write winning, sorted by key: `_latest_per_key` then a sort,
    in one stable sort. Rows are concatenated in write order and the sort is stable, so each
    run of equal keys ends with the latest write; keeping the last row of each run gives the
    same rows in the same order as grouping first, without the hash aggregation. Text keys
    are sorted as their rank among the distinct values (same order, integer comparisons)."""
    ranks = pa.table({k: _rank(data[k].combine_chunks()) for k in keys})
    order = pc.sort_indices(ranks, [(k, "ascending") for k in keys])
    ordered, ranks = data.take(order), ranks.take(order)
    n = ordered.num_rows
    if n < 2:
        return ordered
    last: pa.Array | None = None  # row i ends its run: its key differs from row i + 1's
    for key in keys:
        column = ranks[key].combine_chunks()
        differs = pc.not_equal(column.slice(0, n - 1), column.slice(1))
        last = differs if last is None else pc.or_(last, differs)
    assert last is not None
    if last.true_count == n - 1:
        return ordered
    return ordered.filter(pa.concat_arrays([last, pa.array([True])]))


def _rank(column: pa.Array) -> pa.Array:
    """Integers in the order of `column`'s values (equal values, equal integers)."""
    if pa.types.is_dictionary(column.type):
        entry_rank = pc.rank(column.dictionary, tiebreaker="dense")
        return entry_rank.take(column.indices)
    if not pa.types.is_string(column.type):
        return column
    distinct = pc.unique(column)
    return pc.index_in(column, value_set=distinct.take(pc.sort_indices(distinct)))
