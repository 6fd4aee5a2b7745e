"""The replay fuzz target (issue 14): generated files with hostile values at every field.

Each example writes one file (JSON Lines, CSV or Parquet) of valid records, copies of earlier
ones (duplicates or late ticks), and records with a hostile value in one field, then runs
`tickwatch replay` on it and asserts:
- exit code 0 and no exception;
- every record is accounted for: read = accepted + rejected + late + duplicates, one dead
  letter per rejected record and per late tick (a late tick that arrives twice, identical, is
  one dead letter: only the file's copies of valid records can do that; a tick refused for an
  `asset_type conflict` is counted as rejected, kept as an invalid dead letter), the closed windows
  hold exactly the accepted ticks, and the raw tick lake holds the accepted ticks (plus at most
  the late ones);
- nothing else changed: the input file is byte-for-byte the same and nothing was written
  outside the data dir.

Short in the test suite; a long run: `TICKWATCH_FUZZ_EXAMPLES=2000 .venv/bin/pytest
tests/reliability/test_input_fuzz.py` (the ledger shows how many cases each run tried).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ledger import Ledger
from tests.reliability.test_input_files import replay, rows

AREA = "input files (replay)"
EXAMPLES = int(os.environ.get("TICKWATCH_FUZZ_EXAMPLES", "6"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
TEXT = ("source", "asset_type", "symbol")
TIMES = ("event_time", "ingest_time")
NUMBERS = ("price", "volume", "open", "high", "low", "close")
FIELDS = (*TEXT, *TIMES, *NUMBERS)

hostile_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "Stock", "bond", "A\x00B", "<img src=x onerror=alert(1)>"]),
    st.sampled_from(["X" * 65, "é" * 3, "\ufeffAAPL", "a,b", 'q"q', "line\nbreak", None]),
    st.integers(),
)
hostile_time = st.one_of(
    st.sampled_from([
        "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z", "2024-03-04T24:00:00Z", "2024-03-04T10:00:00", "2200-01-01T00:00Z",
        "1969-12-31T23:59:59Z", "-99999999999", "1e400", "NaN", "", "yesterday", None,
    ]),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
)  # fmt: skip
hostile_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**18), 10**18),
    st.sampled_from(["1.5", "", "abc", "1e400", "-0", True, None, 1e12, 1e15, 0]),
)


@st.composite
def good(draw: st.DrawFn, seq: int) -> dict[str, Any]:
    """A valid record; `seq` makes its event time (and so its tick) unique in the file."""
    at = START + timedelta(seconds=draw(st.integers(0, 6 * 3600)), microseconds=seq)
    record: dict[str, Any] = {
        "source": draw(st.sampled_from(["av", "cg"])),
        "asset_type": "stock",
        "symbol": draw(st.sampled_from(["IBM", "MSFT", "BRK B"])),
        "event_time": at.isoformat(),
        "price": draw(st.floats(50, 150)),
        "volume": draw(st.none() | st.floats(0, 1e6)),
    }
    if record["symbol"] == "BRK B":
        record["asset_type"] = "crypto"
    if draw(st.integers(0, 4)) == 0:
        low, a, b, high = sorted(draw(st.lists(st.floats(50, 150), min_size=4, max_size=4)))
        record.update(open=a, high=high, low=low, close=b)
    return record


@st.composite
def hostile(draw: st.DrawFn, seq: int) -> dict[str, Any]:
    record = draw(good(seq))
    name = draw(st.sampled_from(FIELDS))
    pool = hostile_text if name in TEXT else hostile_time if name in TIMES else hostile_number
    record[name] = draw(pool)
    return record


@st.composite
def files(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]], int]:
    """A file kind, its records and how many of them copy an earlier record."""
    kind = draw(st.sampled_from(["jsonl", "csv", "parquet"]))
    records: list[dict[str, Any]] = []
    copies = 0
    for seq in range(draw(st.integers(1, 120))):
        choice = draw(st.integers(0, 9))
        if choice < 5:
            records.append(draw(good(seq)))
        elif choice < 8:
            records.append(draw(hostile(seq)))
        elif records:  # a copy of an earlier record: a duplicate, a late tick or a bad one again
            records.append(dict(draw(st.sampled_from(records))))
            copies += 1
    for seq, record in enumerate(records):  # every line distinct, so each keeps a dead letter
        record["seq"] = seq
    return kind, records, copies


def write(path: Path, kind: str, records: list[dict[str, Any]]) -> Path:
    path = path.with_suffix("." + kind)
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    elif kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, [*FIELDS, "seq"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(records)
    else:
        pq.write_table(_parquet(records), path, row_group_size=32)
    return path


def _parquet(records: list[dict[str, Any]]) -> pa.Table:
    """Text as text (hostile values as their text), numbers as float64 (a value that is not a
    number as null), times as timestamps when every value is an ISO time, else as text."""

    def text(value: object) -> str | None:
        return None if value is None else str(value)

    def number(value: object) -> float | None:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok and abs(value) < 1e308 else None  # type: ignore[arg-type]

    columns: dict[str, pa.Array] = {"seq": pa.array([r["seq"] for r in records], pa.int64())}
    for name in TEXT:
        columns[name] = pa.array([text(r.get(name)) for r in records], pa.string())
    for name in NUMBERS:
        columns[name] = pa.array([number(r.get(name)) for r in records], pa.float64())
    for name in TIMES:
        values = [r.get(name) for r in records]
        try:
            moments = [None if v is None else datetime.fromisoformat(v) for v in values]
            if any(m is not None and m.tzinfo is None for m in moments):
                raise ValueError("naive")
            columns[name] = pa.array(moments, pa.timestamp("us", tz="UTC"))
        except (TypeError, ValueError, OverflowError, pa.ArrowException):
            columns[name] = pa.array([text(v) for v in values], pa.string())
    return pa.table(columns)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@FUZZ
@given(files())
def test_generated_hostile_files_are_fully_accounted_for(
    ledger: Ledger,
    tmp_path_factory: pytest.TempPathFactory,
    generated: tuple[str, list[dict[str, Any]], int],
):
    kind, records, copies = generated
    folder = tmp_path_factory.mktemp("fuzz")
    path = write(folder / "ticks", kind, records)
    before = _digest(path)
    out = folder / "out"
    result = replay(out, path)
    if result.exit_code != 0:
        ledger.record(AREA, f"fuzz: generated {kind} files", len(records),
                      "exit 0, every record accounted for", f"exit {result.exit_code}")  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.exception is None
    counts = json.loads(result.stdout)
    n = len(records)
    accounted = counts["accepted"] + counts["rejected"] + counts["late"] + counts["duplicates"]
    invalid = rows(out, "select count(*) from dead_letters where kind = 'invalid'")[0][0]
    late = rows(out, "select count(*) from dead_letters where kind = 'late'")[0][0]
    conflicts = "select count(*) from dead_letters where reason like 'asset_type conflict:%'"
    clash = rows(out, conflicts)[0][0]
    in_windows = rows(out, "select coalesce(sum(tick_count), 0) from clean_market_data")[0][0]
    raw = pq.read_table(out / "lake" / "raw_ticks").num_rows if counts["accepted"] else 0
    ok = (
        counts["ticks_in"] == n == accounted
        and invalid <= counts["rejected"] <= invalid + (copies if clash else 0)
        and counts["late"] - copies <= late <= counts["late"]
        and in_windows == counts["accepted"]
        and counts["accepted"] <= raw <= counts["accepted"] + counts["late"]
    )
    ledger.record(AREA, f"fuzz: generated {kind} files", n, "exit 0, every record accounted for",
                  f"exit 0, {'every record accounted for' if ok else counts}")  # fmt: skip
    assert counts["ticks_in"] == n
    assert accounted == n, counts
    # a refused asset-type clash counts as rejected; its identical copies share a dead letter
    assert invalid <= counts["rejected"] <= invalid + (copies if clash else 0), (
        invalid,
        clash,
        counts,
    )
    assert counts["late"] - copies <= late <= counts["late"], (late, copies, counts)
    assert in_windows == counts["accepted"]
    assert counts["accepted"] <= raw <= counts["accepted"] + counts["late"]
    assert _digest(path) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted([path.name, "out"])
