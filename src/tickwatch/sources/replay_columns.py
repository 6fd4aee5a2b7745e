"""Tick files straight into TickBatch columns (pyarrow), validated with array operations.

The fast lane of `tickwatch replay`. A file is read in blocks (JSON Lines: ~32 MB of whole
lines; Parquet: row groups). A block becomes a TickBatch only when every row passes
conservative checks that imply `normalize.parse_tick` would accept it and build the same tick:
text fields present, printable and without surrounding blanks, asset_type exactly `stock` or
`crypto`, times ISO 8601 with an explicit offset (or aware timestamps), prices and volumes
finite and in range, bars complete and consistent, no event or ingest time before 1970 or
beyond the clock skew from the receiving clock `now`. Any block with a row that fails a check,
or that pyarrow cannot parse with the expected types, goes the exact way instead: its records
are yielded for `Processor.handle`, so rejections and their reasons are always those of
`tickwatch.normalize`, the one validator. CSV files always go that way.

pyarrow's JSON parser is more lenient than orjson (the exact path's parser) in places that
never reach a checked column: it reads `NaN` and `Infinity`, invalid UTF-8 and nesting deeper
than orjson's limit in fields it ignores. So a JSON block is parsed by pyarrow only when its
bytes hold none of those (`pyarrow_reads_like_orjson`); the property test in
tests/unit/sources/test_replay_columns.py feeds generated files through both lanes and asserts
the same ticks and the same rejections.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from tickwatch.clock import micros
from tickwatch.engine.batch import TickBatch
from tickwatch.normalize import MAX_PRICE, MAX_SYMBOL_LENGTH, MAX_VOLUME, UnreadableRecord
from tickwatch.sources import Record
from tickwatch.sources.replay import (
    BATCH,
    BOM,
    file_kind,
    json_records,
    parquet_records,
    parquet_tables,
    read_records,
    utc_timestamps,
)

BLOCK_BYTES = 32 << 20
_TS = pa.timestamp("us", tz="UTC")
_ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
_NAME = r"^[!-~]([ -~]*[!-~])?$"  # printable ASCII, no blanks around
_TEXT = ("source", "asset_type", "symbol", "event_time", "ingest_time")
_NUMBERS = ("price", "volume", "open", "high", "low", "close")
SCHEMA = pa.schema([(n, pa.string()) for n in _TEXT] + [(n, pa.float64()) for n in _NUMBERS])


@dataclass(slots=True)
class Block:
    """Either validated columns (`batch`) or records for the exact path (`records`)."""

    batch: TickBatch | None
    records: list[Record]
    rows: int


def replay_blocks(
    paths: list[Path], now: datetime, max_skew: timedelta, stop: threading.Event
) -> Iterator[Block]:
    """Blocks of every file in order; record blocks cut to the replay batch size.

    Blocks are read one ahead in a thread: pyarrow's JSON parser, the array checks and the
    file reads release the GIL, so on two cores the next block is parsed while the engine and
    the sinks work on this one. Errors reach the caller where the block would have.
    """
    blocks = (block for path in paths for block in read_blocks(path, now, max_skew))
    for block in _read_ahead(blocks):
        if stop.is_set():
            return
        if block.batch is not None:
            yield block
            continue
        for a in range(0, len(block.records), BATCH):
            part = block.records[a : a + BATCH]
            yield Block(None, part, len(part))


def _read_ahead(blocks: Iterator[Block]) -> Iterator[Block]:
    """`blocks`, produced in a thread at most one block ahead of the consumer."""
    ready: queue.Queue[tuple[Block | None, BaseException | None]] = queue.Queue(maxsize=1)
    closed = threading.Event()

    def hand_over(item: tuple[Block | None, BaseException | None]) -> bool:
        while not closed.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for block in blocks:
                if not hand_over((block, None)):
                    return
            hand_over((None, None))
        except BaseException as exc:  # re-raised in the consumer, where the block was due
            hand_over((None, exc))

    thread = threading.Thread(target=produce, name="tickwatch-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            block, error = ready.get()
            if error is not None:
                raise error
            if block is None:
                return
            yield block
    finally:
        closed.set()
        thread.join()


def read_blocks(path: Path, now: datetime, max_skew: timedelta) -> Iterator[Block]:
    kind = file_kind(path)
    if kind == "json":
        yield from _jsonl_blocks(path, now, max_skew)
    elif kind == "parquet":
        for part in parquet_tables(path):
            if isinstance(part, UnreadableRecord):
                yield Block(None, [part], 1)
                continue
            batch = to_batch(utc_timestamps(part), now, max_skew)
            if batch is not None:
                yield Block(batch, [], part.num_rows)
            else:
                records = parquet_records(part)
                yield Block(None, records, len(records))
    else:
        records = list(read_records(path))
        yield Block(None, records, len(records))


def _jsonl_blocks(path: Path, now: datetime, max_skew: timedelta) -> Iterator[Block]:
    with path.open("rb") as handle:
        rest = handle.read(len(BOM)).removeprefix(BOM)
        while True:
            chunk = handle.read(BLOCK_BYTES)
            data = rest + chunk
            if not chunk:
                if data.strip():
                    yield _json_block(data if data.endswith(b"\n") else data + b"\n", now, max_skew)
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            rest = data[cut:]
            yield _json_block(data[:cut], now, max_skew)


def _json_block(data: bytes, now: datetime, max_skew: timedelta) -> Block:
    options = pj.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="ignore")
    table = None
    with contextlib.suppress(pa.ArrowException):  # any doubt: the exact way decides
        table = pj.read_json(io.BytesIO(data), parse_options=options)
    batch = None if table is None else to_batch(table, now, max_skew)
    if batch is not None and table is not None:
        lines = data.count(b"\n")
        if table.num_rows == lines and pyarrow_reads_like_orjson(data, lines):
            return Block(batch, [], table.num_rows)
    with io.BytesIO(data) as raw:
        records = list(json_records(raw))
    return Block(None, records, len(records))


def pyarrow_reads_like_orjson(data: bytes, lines: int) -> bool:
    """Whether orjson reads these `lines` JSON lines as pyarrow did: one object per line (one
    `{`, and `}` ending the line: pyarrow reads `{..}{..}` as two rows, and skips a blank line),
    no nesting (no `[`), valid UTF-8 without a byte order mark, no `NaN`/`Infinity` literal.
    Conservative: a block that fails goes the exact way, where orjson decides."""
    if b"[" in data or data.count(b"{") != lines:
        return False
    if data.count(b"}\n") + data.count(b"}\r\n") != lines:
        return False
    if not data.isascii():
        if BOM in data:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return b"NaN" not in data and b"Infinity" not in data


def to_batch(table: pa.Table, now: datetime, max_skew: timedelta) -> TickBatch | None:
    """Columns of `table` as a TickBatch, or None if any row needs `normalize` to judge it."""
    n = table.num_rows
    if len(set(table.column_names)) != len(table.column_names):
        return None
    if n == 0 or not all(
        name in table.column_names
        for name in ("source", "asset_type", "symbol", "event_time", "price")
    ):
        return None
    col = {
        name: table[name].combine_chunks() if name in table.column_names else None
        for name in (*_TEXT, *_NUMBERS)
    }
    for name in ("source", "symbol"):
        values = col[name]
        if not pa.types.is_string(values.type) or values.null_count:  # type: ignore[union-attr]
            return None
        if not pc.all(pc.match_substring_regex(values, _NAME)).as_py():
            return None
    for name in ("symbol", "source"):
        if not pc.all(pc.less_equal(pc.utf8_length(col[name]), MAX_SYMBOL_LENGTH)).as_py():
            return None
    asset = col["asset_type"]
    if asset is None or not pa.types.is_string(asset.type) or asset.null_count:
        return None
    crypto = pc.equal(asset, "crypto")
    if not pc.all(pc.or_(crypto, pc.equal(asset, "stock"))).as_py():
        return None
    event = _times(col["event_time"])
    if event is None:
        return None
    ingest_col = col["ingest_time"]
    now_us = micros(now)
    ingest = np.full(n, now_us, np.int64)
    if ingest_col is not None and ingest_col.null_count != n:
        if ingest_col.null_count:  # a missing ingest_time means "now", as in parse_tick
            filler = now.isoformat() if pa.types.is_string(ingest_col.type) else now
            ingest_col = pc.fill_null(ingest_col, pa.scalar(filler, ingest_col.type))
        given = _times(ingest_col)
        if given is None:
            return None
        ingest = given
    latest = now_us + max_skew // timedelta(microseconds=1)
    for times in (event, ingest):
        if (times < 0).any() or (times > latest).any():
            return None
    numbers = {}
    for name in _NUMBERS:
        values = col[name]
        if values is None:
            numbers[name] = np.full(n, np.nan)
        elif pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
            numbers[name] = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        else:
            return None
    price, volume = numbers["price"], numbers["volume"]
    bar = [numbers[name] for name in ("open", "high", "low", "close")]
    has = [~np.isnan(b) for b in bar]
    is_bar = has[0]
    if not all((h == is_bar).all() for h in has[1:]):
        return None
    price = np.where(np.isnan(price) & is_bar, bar[3], price)
    with np.errstate(invalid="ignore"):
        for p in (price, *(b[is_bar] for b in bar)):
            if not ((p > 0) & (p < MAX_PRICE)).all():
                return None
        o, h, lo, c = (b[is_bar] for b in bar)
        if not ((lo <= np.minimum(o, c)) & (np.maximum(o, c) <= h)).all():
            return None
        known = ~np.isnan(volume)
        if not ((volume[known] >= 0) & (volume[known] < MAX_VOLUME)).all():
            return None
    symbols = col["symbol"].dictionary_encode()  # type: ignore[union-attr]
    sources = col["source"].dictionary_encode()  # type: ignore[union-attr]
    return TickBatch(
        symbols=symbols.dictionary.to_pylist(),
        sources=sources.dictionary.to_pylist(),
        symbol_code=symbols.indices.to_numpy(zero_copy_only=False).astype(np.int32),
        source_code=sources.indices.to_numpy(zero_copy_only=False).astype(np.int32),
        asset_code=crypto.to_numpy(zero_copy_only=False).astype(np.int8),
        event=event,
        ingest=ingest,
        price=price,
        volume=volume,
        open=bar[0],
        high=bar[1],
        low=bar[2],
        close=bar[3],
    )


def _times(values: pa.Array | None) -> npt.NDArray[np.int64] | None:
    """Microseconds since the epoch, or None unless every value is unambiguous."""
    if values is None or values.null_count:
        return None
    if pa.types.is_timestamp(values.type):
        if values.type.tz is None:
            return None
        try:
            values = values.cast(_TS)  # refuses nanoseconds it would drop, and overflow
        except pa.ArrowException:
            return None
    elif pa.types.is_string(values.type):
        if not pc.all(pc.match_substring_regex(values, _ISO)).as_py():
            return None
        try:
            values = values.cast(_TS)
        except pa.ArrowException:
            return None
    else:
        return None
    micros_: npt.NDArray[np.int64] = values.cast(pa.int64()).to_numpy(zero_copy_only=False)
    return micros_
