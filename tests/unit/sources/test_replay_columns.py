"""The replay fast lane reads exactly what `read_records` + `normalize.parse_tick` would.

A block becomes columns only when every row would pass `parse_tick` unchanged; otherwise its
records go the exact way. Each case compares the fast lane with that independent path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ledger import Ledger
from tickwatch.engine.batch import TickBatch
from tickwatch.errors import InvalidTick
from tickwatch.normalize import parse_tick
from tickwatch.processor import decode
from tickwatch.records import payload_text
from tickwatch.sources import replay_columns
from tickwatch.sources.replay import read_records
from tickwatch.sources.replay_columns import read_blocks

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


# -- one validator: the fast lane never decides differently from the exact one -----------------
#
# Issue 14, class 4: a UTF-8 byte order mark was accepted by the fast lane and rejected by the
# exact one, so one bad line elsewhere in a block changed which ticks counted. The property
# tests below write generated files (valid records, hostile values at every field, lines that
# pyarrow and orjson read differently) and compare, record by record, what each lane makes of
# them: the same ticks in the same order and the same rejections with the same reasons.

Outcome = tuple[object, ...]
LANES = "replay readers (fast lane vs exact)"
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def judge(record: object) -> Outcome:
    try:
        return ("tick", parse_tick(decode(record), NOW, SKEW))  # type: ignore[arg-type]
    except InvalidTick as error:
        return ("rejected", error.reason, payload_text(record))


def exact_lane(path: Path) -> list[Outcome]:
    return [judge(record) for record in read_records(path)]


def fast_lane(path: Path) -> list[Outcome]:
    out: list[Outcome] = []
    for block in read_blocks(path, NOW, SKEW):
        if block.batch is not None:
            out += [("tick", block.batch.tick(i)) for i in range(len(block.batch))]
        else:
            out += [judge(record) for record in block.records]
    return out


def test_a_byte_order_mark_counts_the_same_in_both_lanes_whatever_else_is_in_the_block(
    tmp_path: Path, ledger: Ledger
):
    alone = tmp_path / "bom.jsonl"
    alone.write_bytes(b"\xef\xbb\xbf" + b"".join(orjson.dumps(r) + b"\n" for r in GOOD))
    with_bad = tmp_path / "bom-and-bad.jsonl"
    with_bad.write_bytes(alone.read_bytes() + b"{not json\n")
    ticks = [parse_tick(r, NOW, SKEW) for r in GOOD]
    found = [o[1] for o in exact_lane(with_bad) if o[0] == "tick"]
    fast = sum(o[0] == "tick" for o in fast_lane(with_bad))
    both = f"{fast} ticks in both lanes"
    if fast != len(found):
        both = f"{len(found)} ticks exact, {fast} fast"
    ledger.record(LANES, "UTF-8 byte order mark, with a bad line in the block", 2,
                  "3 ticks in both lanes", both)  # fmt: skip
    assert found == ticks
    for path in (alone, with_bad):
        assert fast_lane(path) == exact_lane(path)
    (block,) = read_blocks(alone, NOW, SKEW)
    assert block.batch is not None  # the fast lane still takes a clean file with a mark


def test_two_objects_on_a_line_and_a_blank_line_do_not_balance_out(tmp_path: Path):
    """pyarrow reads `{..}{..}` as two rows and skips a blank line: the row count matches the
    line count, yet orjson rejects the line. Found by the property test below."""
    one = orjson.dumps(GOOD[0])
    path = tmp_path / "t.jsonl"
    path.write_bytes(one + b"\n" + one + one + b"\n   \n" + one + b"\n")
    assert fast_lane(path) == exact_lane(path)
    assert [o[0] for o in exact_lane(path)] == ["tick", "rejected", "tick"]


def _iso(moment: datetime, offset_minutes: int, digits: int, zulu: bool) -> str:
    local = moment + timedelta(minutes=offset_minutes)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    if zulu and offset_minutes == 0:
        return text + "Z"
    sign = "-" if offset_minutes < 0 else "+"
    return text + f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"


good_times = st.builds(
    _iso,
    st.datetimes(datetime(2024, 3, 3), datetime(2024, 3, 5, 0, 4), timezones=st.just(UTC)),
    st.sampled_from([0, 0, 60, -300, 330, -59, 23 * 60 + 59]),
    st.sampled_from([0, 0, 1, 3, 6]),
    st.booleans(),
)
hostile_times = st.one_of(
    st.sampled_from([
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-01-01T00:00:00Z",
        "2024-03-04T24:00:00Z", "2024-03-04T23:59:60Z", "2024-02-30T10:00:00Z",
        "2024-03-04T10:00:00+24:00", "2024-03-04T10:00:00+05:60", "2024-03-04T10:00:00",
        "2024-03-04T10:00:00.1234567Z", "2024-03-04 10:00:00Z", "2200-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z", "", " ", "-99999999999", "1709546400", "NaN", "1e400",
    ]),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.just(None),
    st.just([1]),
)  # fmt: skip
good_numbers = st.floats(0.01, 1e6, allow_nan=False) | st.integers(1, 10**6)
hostile_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.sampled_from(["1.5", "", "abc", True, None, [1], {"a": 1}, 1e12, 1e15, -0.0, 0]),
)
names = st.sampled_from(
    ["av", "cg", "IBM", "BTC", "BRK B", " IBM", "IBM ", "ÍBM", "A\x00B", "X" * 65]
)


@st.composite
def good_records(draw: st.DrawFn) -> dict[str, object]:
    record: dict[str, object] = {
        "source": draw(st.sampled_from(["av", "cg", "file"])),
        "asset_type": draw(st.sampled_from(["stock", "crypto"])),
        "symbol": draw(st.sampled_from(["IBM", "BTC", "BRK B"])),
        "event_time": draw(good_times),
        "price": draw(good_numbers),
    }
    if draw(st.booleans()):
        record["volume"] = draw(st.none() | st.floats(0, 1e9) | st.integers(0, 10**9))
    if draw(st.booleans()):
        record["ingest_time"] = draw(good_times)
    if draw(st.integers(0, 3)) == 0:
        low, a, b, high = sorted(draw(st.lists(good_numbers, min_size=4, max_size=4)))
        record.update(open=a, high=high, low=low, close=b)
        if draw(st.booleans()):
            record["price"] = None
    return record


FIELDS = ("source", "asset_type", "symbol", "event_time", "ingest_time", "price", "volume")
FIELDS += ("open", "high", "low", "close")


@st.composite
def hostile_records(draw: st.DrawFn) -> dict[str, object]:
    record = draw(good_records())
    name = draw(st.sampled_from(FIELDS))
    if name in ("event_time", "ingest_time"):
        value = draw(hostile_times)
    elif name in ("source", "symbol", "asset_type"):
        value = draw(names | st.sampled_from(["Stock", " crypto", "bond", None, 5]))
    else:
        value = draw(hostile_numbers)
    if draw(st.integers(0, 5)) == 0:
        record.pop(name, None)
    else:
        record[name] = value
    return record


def _line(record: dict[str, object], ascii_only: bool) -> bytes:
    return json.dumps(
        record, ensure_ascii=ascii_only
    ).encode()  # NaN stays NaN, as a hostile file has it


raw_lines = st.builds(
    lambda record, how: {
        "bom": b"\xef\xbb\xbf" + _line(record, True),
        "nan extra": _line(record, True)[:-1] + b', "x": NaN}',
        "infinity extra": _line(record, True)[:-1] + b', "x": -Infinity}',
        "bad utf-8 extra": _line(record, True)[:-1] + b', "x": "\xff\xfe"}',
        "utf-8 extra": _line(record, True)[:-1] + ', "x": "é€"}'.encode(),
        "deep extra": _line(record, True)[:-1] + b', "x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        "nested extra": _line(record, True)[:-1] + b', "x": {"y": [1, {"z": 2}]}}',
        "duplicate key": _line(record, True)[:-1] + b', "price": 2.5}',
        "trailing text": _line(record, True) + b" x",
        "two objects": _line(record, True) + _line(record, True),
        "crlf": _line(record, True) + b"\r",
        "blank": b"   ",
        "not json": b"{not json",
        "array": b"[1, 2]",
        "escaped key": _line(record, True).replace(b'"price"', b'"pr\\u0069ce"', 1),
    }[how],
    good_records(),
    st.sampled_from([
        "bom", "nan extra", "infinity extra", "bad utf-8 extra", "utf-8 extra", "deep extra",
        "nested extra", "duplicate key", "trailing text", "two objects", "crlf", "blank",
        "not json", "array", "escaped key",
    ]),
)  # fmt: skip
lines = st.one_of(
    st.builds(_line, good_records(), st.booleans()),
    st.builds(_line, good_records(), st.booleans()),
    st.builds(_line, good_records(), st.booleans()),
    st.builds(_line, hostile_records(), st.booleans()),
    raw_lines,
)


@PROPERTY
@given(
    st.lists(lines, min_size=1, max_size=40),
    st.booleans(),
    st.booleans(),
    st.sampled_from([64, 512, 32 << 20]),
)
def test_generated_json_lines_files_read_the_same_in_both_lanes(
    tmp_path: Path, ledger: Ledger, body: list[bytes], bom: bool, final_newline: bool, block: int
):
    path = tmp_path / "t.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(body)
                     + (b"\n" if final_newline else b""))  # fmt: skip
    original = replay_columns.BLOCK_BYTES
    replay_columns.BLOCK_BYTES = block  # small blocks: some go fast, their neighbours the exact way
    try:
        fast = fast_lane(path)
    finally:
        replay_columns.BLOCK_BYTES = original
    exact = exact_lane(path)
    ledger.record(LANES, "generated JSON Lines files", len(body), "same outcomes",
                  "same outcomes" if fast == exact else "different outcomes")  # fmt: skip
    assert fast == exact


UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
GOOD_SECONDS = (1709510400, 1709596800)  # 2024-03-04 UTC


@st.composite
def time_columns(draw: st.DrawFn, n: int, clean: bool) -> pa.Array:
    unit = draw(st.sampled_from(list(UNITS)))
    zone = draw(st.sampled_from([None, "UTC", "+05:00", "America/New_York"]))
    per = UNITS[unit]
    good = st.integers(GOOD_SECONDS[0] * per, GOOD_SECONDS[1] * per)
    if unit == "ns":
        good = good.map(lambda v: v - v % 1000)  # whole microseconds
    if unit == "ns":  # nanoseconds reach only the years 1677 to 2262
        hostile = st.integers(-(2**63) + 1, 2**63 - 1) | good.map(lambda v: v + 7)
    else:  # beyond datetime's years 1 to 9999, within what Parquet stores (seconds as ms)
        edges = st.sampled_from([253402300800 * per, -62135596801 * per])
        hostile = st.integers(-(2**62) // 1000, 2**62 // 1000) | edges
    value = good if clean else st.one_of(good, good, good, hostile, st.none())
    values = draw(st.lists(value, min_size=n, max_size=n))
    return pa.array(values, pa.timestamp(unit, tz=zone))


@PROPERTY
@given(st.data(), st.integers(1, 30))
def test_generated_parquet_files_read_the_same_in_both_lanes(
    tmp_path: Path, ledger: Ledger, data: st.DataObject, n: int
):
    def column(values: st.SearchStrategy[object], kind: pa.DataType) -> pa.Array:
        return pa.array(data.draw(st.lists(values, min_size=n, max_size=n)), kind)

    clean = data.draw(st.booleans())  # half the files hold valid rows only: the fast lane's share

    def pick(good: list[object], bad: list[object]) -> st.SearchStrategy[object]:
        return st.sampled_from(good if clean else good + bad)

    numbers = st.floats(0.01, 1e6)
    if not clean:
        numbers = numbers | st.floats(allow_nan=True, allow_infinity=True) | st.none()
    columns = {
        "source": column(pick(["av", "cg"], [" x", None]), pa.string()),
        "asset_type": column(pick(["stock", "crypto"], ["bond", "Stock"]), pa.string()),
        "symbol": column(pick(["IBM", "BTC"], ["A\x00B", "X" * 65]), pa.string()),
        "event_time": data.draw(time_columns(n, clean)),
        "price": column(numbers, pa.float64()),
        "volume": column(st.floats(0, 1e6) | st.none(), pa.float64()),
    }
    if data.draw(st.booleans()):
        columns["ingest_time"] = data.draw(time_columns(n, clean))
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=data.draw(st.sampled_from([4, 1000])))
    fast, exact = fast_lane(path), exact_lane(path)
    ledger.record(LANES, "generated Parquet files", n, "same outcomes",
                  "same outcomes" if fast == exact else "different outcomes")  # fmt: skip
    assert fast == exact
