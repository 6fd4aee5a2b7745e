"""Silent merges and silent losses at the file boundary (issue 14, class 13).

- A Latin-1 CSV used to be decoded with replacement characters, so `CAFÉ` and `CAFÈ` became one
  symbol: now the file is refused, by name, with the fix (convert to UTF-8).
- A CSV without a header line used to lose its first row as the header (and reject the rest):
  now it is refused with the header it needs.
- A CSV with a byte order mark used to reject every row (`\\ufeffsource` is not `source`): now it
  gives the rows of the same file without one.
- The same symbol from a stock source and a crypto source used to become one series: series are
  keyed by symbol, so the asset type seen first keeps it and the other's ticks are dead letters
  with the reason `asset_type conflict` (both lanes, and the exact engine).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger import Ledger
from tests.reliability.test_input_files import (
    LETTERS,
    WINDOWS,
    outcome,
    refused,
    replay,
    rows,
    summary,
    valid_rows,
    write_csv,
    write_jsonl,
)

AREA = "input files (replay)"


def test_latin1_csv_is_refused_instead_of_merging_symbols(ledger: Ledger, tmp_path: Path):
    records = valid_rows("CAFÉ", windows=6) + valid_rows("CAFÈ", windows=6)
    path = write_csv(tmp_path / "latin1.csv", records, encoding="latin-1")
    result = replay(tmp_path / "out", path)
    found = outcome(result, tmp_path / "out")
    ledger.record(AREA, "CSV in Latin-1 (distinct symbols would merge)", 1,
                  "exit 2, 0 windows, 0 dead letters", found)  # fmt: skip
    text = refused(result, "latin1.csv")
    assert "not UTF-8" in text and "iconv" in text
    assert rows(tmp_path / "out", WINDOWS) == []


def test_headerless_csv_is_refused_instead_of_losing_its_first_row(ledger: Ledger, tmp_path: Path):
    path = write_csv(tmp_path / "bare.csv", valid_rows(windows=6), header=False)
    result = replay(tmp_path / "out", path)
    found = outcome(result, tmp_path / "out")
    ledger.record(AREA, "CSV without a header line", 1, "exit 2, 0 windows, 0 dead letters", found)
    text = refused(result, "bare.csv")
    assert "header line" in text and "source,asset_type,symbol,event_time,price,volume" in text


def test_csv_naming_a_column_twice_is_refused(ledger: Ledger, tmp_path: Path):
    path = tmp_path / "twice.csv"
    path.write_text("source,asset_type,symbol,event_time,price,price\n"
                    "file,stock,AAPL,2024-03-04T14:30:10Z,100,1\n")  # fmt: skip
    result = replay(tmp_path / "out", path)
    found = outcome(result, tmp_path / "out")
    ledger.record(AREA, "CSV header naming a column twice", 1, "exit 2, 0 windows, 0 dead letters",
                  found)  # fmt: skip
    assert "names price more than once" in refused(result, "twice.csv")


def test_json_lines_joined_with_byte_order_marks_lose_no_line(ledger: Ledger, tmp_path: Path):
    halves = [valid_rows(windows=12)[:12], valid_rows(windows=12)[12:]]
    joined = b"".join(
        b"\xef\xbb\xbf" + write_jsonl(tmp_path / f"{i}.jsonl", half).read_bytes()
        for i, half in enumerate(halves)
    )
    (tmp_path / "joined.jsonl").write_bytes(joined)
    summary(replay(tmp_path / "a", write_jsonl(tmp_path / "plain.jsonl", valid_rows(windows=12))))
    result = replay(tmp_path / "b", tmp_path / "joined.jsonl")
    case = "JSON Lines files joined, each with a byte order mark"
    found = outcome(result, tmp_path / "b")
    ledger.record(AREA, case, 2, "exit 0, 12 windows, 0 dead letters", found)
    assert summary(result)["accepted"] == 24
    assert rows(tmp_path / "b", WINDOWS) == rows(tmp_path / "a", WINDOWS)


def test_csv_with_a_byte_order_mark_gives_the_rows_of_the_same_file_without(
    ledger: Ledger, tmp_path: Path
):
    plain = write_csv(tmp_path / "plain.csv", valid_rows(windows=6))
    marked = write_csv(tmp_path / "marked.csv", valid_rows(windows=6), encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    summary(replay(tmp_path / "a", plain))
    result = replay(tmp_path / "b", marked)
    ledger.record(AREA, "CSV with a UTF-8 byte order mark", 12,
                  "exit 0, 6 windows, 0 dead letters", outcome(result, tmp_path / "b"))  # fmt: skip
    assert summary(result)["accepted"] == 12
    assert rows(tmp_path / "b", WINDOWS) == rows(tmp_path / "a", WINDOWS)
    assert len(rows(tmp_path / "a", WINDOWS)) == 6


@pytest.mark.parametrize(
    ("exact", "detector"),
    [(False, "zscore"), (True, "zscore"), (True, "robust")],
    ids=["fast lane", "exact lane", "reference engine (DETECTOR=robust)"],
)
def test_one_symbol_from_a_stock_and_a_crypto_source_never_merges(
    ledger: Ledger, tmp_path: Path, exact: bool, detector: str
):
    stock = valid_rows("ETH", windows=8, asset_type="stock")
    crypto = [
        {**r, "source": "coins", "price": r["price"] * 30, "event_time": r["event_time"]}
        for r in valid_rows("ETH", windows=8, asset_type="crypto")
    ]
    mixed = [r for pair in zip(stock, crypto, strict=True) for r in pair]
    env = {"DETECTOR": detector}
    stock_only = write_jsonl(tmp_path / "stock.jsonl", stock)
    summary(replay(tmp_path / "stock-only", stock_only, env=env))
    mixed_file = write_jsonl(tmp_path / "mixed.jsonl", mixed)
    result = replay(tmp_path / "out", mixed_file, exact=exact, env=env)
    case = "one symbol from a stock and a crypto source"
    found = outcome(result, tmp_path / "out")
    ledger.record(AREA, case, len(crypto), "exit 0, 8 windows, 16 dead letters", found)
    assert summary(result)["accepted"] == len(stock)
    assert rows(tmp_path / "out", WINDOWS) == rows(tmp_path / "stock-only", WINDOWS)
    letters = rows(tmp_path / "out", LETTERS)
    assert len(letters) == len(crypto)
    assert {(kind, reason.split(":")[0]) for kind, reason in letters} == {
        ("invalid", "asset_type conflict")
    }
    assert "'ETH' is a stock series" in letters[0][1]
