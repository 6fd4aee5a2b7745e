"""The job's validation stage (spark/parse.py) on Arrow chunks as Spark hands them over:
a slice of a larger batch, a null value (a Kafka tombstone), a record spread over lines."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pyarrow as pa
import pytest

from tickwatch.spark import parse
from tickwatch.spark.parse import validate_batches, validate_record

NOW_US = 1_709_562_600_000_000  # 2024-03-04 14:30:00 UTC, the broker's timestamp
SKEW = timedelta(minutes=5)


def _record(symbol: str, price: float) -> bytes:
    return orjson.dumps(
        {
            "source": "coingecko",
            "asset_type": "crypto",
            "symbol": symbol,
            "event_time": "2024-03-04T14:29:00+00:00",
            "ingest_time": "2024-03-04T14:29:01+00:00",
            "price": price,
            "volume": 2.0,
        }
    )


def _chunk(values: list[bytes | None]) -> pa.RecordBatch:
    n = len(values)
    return pa.RecordBatch.from_pydict(
        {
            "value": pa.array(values, pa.binary()),
            "topic": ["raw_crypto_ticks"] * n,
            "partition": pa.array([0] * n, pa.int32()),
            "offset": pa.array(range(n), pa.int64()),
            "received_us": pa.array([NOW_US] * n, pa.int64()),
        }
    )


def _validate(chunk: pa.RecordBatch) -> list[dict[str, object]]:
    out = list(validate_batches(SKEW)(iter([chunk])))
    return pa.Table.from_batches(out).to_pylist()


def test_a_slice_of_a_batch_reads_its_own_records() -> None:
    chunk = _chunk([_record("a", 1.0), _record("b", 2.0), _record("c", 3.0), _record("d", 4.0)])
    rows = _validate(chunk.slice(1, 2))
    assert [(r["symbol"], r["price"], r["offset"], r["kind"]) for r in rows] == [
        ("b", 2.0, 1, "tick"),
        ("c", 3.0, 2, "tick"),
    ]
    assert rows[0]["event_us"] == NOW_US - 60_000_000
    assert rows[0]["ingest_us"] == NOW_US - 59_000_000


def test_a_tombstone_is_a_dead_letter_and_the_others_pass() -> None:
    rows = _validate(_chunk([_record("a", 1.0), None, _record("c", 3.0)]))
    assert [r["kind"] for r in rows] == ["tick", "invalid", "tick"]
    assert rows[1]["reason"] == "record is NoneType, expected an object"
    assert rows[1]["received_us"] == NOW_US
    assert [rows[0]["price"], rows[2]["price"]] == [1.0, 3.0]


def test_a_record_over_two_lines_is_read_as_one() -> None:
    spread = _record("b", 2.0).replace(b', "price"', b',\n"price"')
    rows = _validate(_chunk([_record("a", 1.0), spread, b""]))
    assert [(r["kind"], r["symbol"]) for r in rows] == [
        ("tick", "a"),
        ("tick", "b"),
        ("invalid", ""),
    ]
    assert rows[1]["price"] == 2.0
    assert str(rows[2]["reason"]).startswith("malformed JSON")


def test_one_doubtful_record_sends_only_its_piece_down_the_record_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    judged: list[bytes] = []

    def counted(value: bytes, received_us: int, max_skew: timedelta) -> dict[str, object]:
        judged.append(value)
        return validate_record(value, received_us, max_skew)

    monkeypatch.setattr(parse, "validate_record", counted)
    values: list[bytes | None] = [_record(f"s{i}", 1.0 + i) for i in range(10_000)]
    values[7_000] = b'{"symbol": "s7000", "price": -1.0}'
    rows = _validate(_chunk(values))

    assert [r["offset"] for r in rows] == list(range(10_000))
    assert [r["kind"] for r in rows].count("invalid") == 1 and rows[7_000]["kind"] == "invalid"
    assert rows[9_999]["price"] == 10_000.0
    # halves of 10,000: 5,000, 2,500, then the 1,250 records holding the doubtful one
    assert len(judged) == 1_250 and values[7_000] in judged
