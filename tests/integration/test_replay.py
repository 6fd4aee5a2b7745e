"""The replay contract: files in, SQLite + lake out, idempotent, bad input dead-lettered."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from tickwatch.cli import app

runner = CliRunner()


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def ticks_for(symbol: str, returns: list[float]) -> list[dict[str, object]]:
    """Window i (from 14:30Z) opens at 100 with volume 10 and closes at 100 * (1 + r / 100)."""
    rows = []
    for i, r in enumerate(returns):
        minute = 30 + 5 * i
        hour, minute = 14 + minute // 60, minute % 60
        rows.append(
            {
                "source": "file",
                "asset_type": "stock",
                "symbol": symbol,
                "event_time": f"2024-03-04T{hour:02d}:{minute:02d}:10+00:00",
                "price": 100.0,
                "volume": 10,
            }
        )
        rows.append({"source": "file", "asset_type": "stock", "symbol": symbol,
                     "event_time": f"2024-03-04T{hour:02d}:{minute + 3:02d}:00Z",
                     "price": 100 * (1 + r / 100), "volume": ""})  # fmt: skip
    return rows


def replay(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["replay", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def table(db: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute(query).fetchall()


def test_replay_writes_windows_anomalies_and_lake_and_is_idempotent(tmp_path: Path):
    returns = [0.1, -0.1] * 10 + [0.6]  # last window: z = 0.6 / sqrt(0.2 / 19) = 5.85, high
    source = write_jsonl(tmp_path / "ticks.jsonl", ticks_for("AAPL", returns))
    out = tmp_path / "out"

    summary = replay(str(source), "--data-dir", str(out))
    assert summary["ticks_in"] == 42 and summary["windows"] == 21
    assert summary["anomalies_by_severity"] == {"high": 1}
    db = out / "tickwatch.db"
    assert table(
        db, "select symbol, window_start, anomaly_type, severity from market_anomalies"
    ) == [("AAPL", "2024-03-04T16:10:00.000+00:00", "price_spike", "high")]
    (z,) = table(db, "select z_score from market_anomalies")[0]
    assert abs(z - 0.6 / (0.2 / 19) ** 0.5) < 1e-6

    replay(str(source), "--data-dir", str(out))  # the same file again
    assert table(db, "select count(*) from clean_market_data") == [(21,)]
    assert table(db, "select count(*) from market_anomalies") == [(1,)]
    raw = pq.read_table(out / "lake" / "raw_ticks").num_rows
    clean = pq.read_table(out / "lake" / "clean_market_data").num_rows
    assert (raw, clean) == (42, 21)


def test_csv_with_epoch_seconds_gives_the_same_rows_as_jsonl(tmp_path: Path):
    rows = ticks_for("MSFT", [0.2, -0.1, 0.3])
    write_jsonl(tmp_path / "a.jsonl", rows)
    lines = ["source,asset_type,symbol,event_time,price,volume"]
    for r in rows:
        from tickwatch.normalize import parse_time

        epoch = parse_time(r["event_time"]).timestamp()
        lines.append(
            f"{r['source']},{r['asset_type']},{r['symbol']},{epoch},{r['price']},{r['volume']}"
        )
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    replay(str(tmp_path / "a.jsonl"), "--data-dir", str(tmp_path / "a"))
    replay(str(tmp_path / "b.csv"), "--data-dir", str(tmp_path / "b"))
    query = "select * from clean_market_data order by window_start"
    assert table(tmp_path / "a" / "tickwatch.db", query) == table(
        tmp_path / "b" / "tickwatch.db", query
    )
    assert len(table(tmp_path / "a" / "tickwatch.db", query)) == 3


def test_bad_input_is_dead_lettered_with_reasons_and_the_run_continues(tmp_path: Path):
    good = ticks_for("AAPL", [0.1, 0.2])
    bad = [
        "{not json",
        {"source": "file", "asset_type": "stock", "symbol": "AAPL", "price": 5},
        {**good[0], "price": -1},
        {**good[0], "price": "NaN"},
        {**good[0], "volume": -5},
        {**good[0], "event_time": "2099-01-01T00:00:00Z"},
        good[0],  # a duplicate: counted once, not dead-lettered
    ]
    source = write_jsonl(tmp_path / "mixed.jsonl", good + bad)
    summary = replay(str(source), "--data-dir", str(tmp_path / "out"))
    assert summary["rejected"] == 6 and summary["duplicates"] == 1
    assert summary["accepted"] == 4 and summary["windows"] == 2
    reasons = sorted(
        r for (r,) in table(tmp_path / "out" / "tickwatch.db", "select reason from dead_letters")
    )
    assert [r.split(":")[0] for r in reasons] == [
        "event_time 2099-01-01T00",
        "malformed JSON",
        "missing field event_time",
        "price is not finite",
        "price must be positive and below 1e+12, got -1",
        "volume must be >= 0 and below 1e+15, got -5",
    ]


def test_missing_file_is_a_clear_error(tmp_path: Path):
    result = runner.invoke(app, ["replay", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "no such file to replay" in " ".join(result.output.split())  # rich wraps lines


def test_parquet_with_and_without_time_zone_and_a_second_run_keeps_one_dead_letter(tmp_path: Path):
    import pyarrow as pa

    from tickwatch.normalize import parse_time

    late = {**ticks_for("IBM", [0.1])[0], "event_time": "2099-01-01T00:00:00Z"}
    rows = [*ticks_for("IBM", [0.1, 0.2]), late]
    times = [parse_time(r["event_time"]) for r in rows]
    columns = {
        "source": [r["source"] for r in rows],
        "asset_type": [r["asset_type"] for r in rows],
        "symbol": [r["symbol"] for r in rows],
        "price": [float(r["price"]) for r in rows],
        "volume": [float(r["volume"]) if r["volume"] != "" else None for r in rows],
    }
    aware = pa.table({**columns, "event_time": pa.array(times, pa.timestamp("us", tz="UTC"))})
    naive = pa.table({**columns, "event_time": pa.array([t.replace(tzinfo=None) for t in times],
                                                         pa.timestamp("ms"))})  # fmt: skip
    pq.write_table(aware, tmp_path / "aware.parquet")
    pq.write_table(naive, tmp_path / "naive.parquet")
    for name in ("aware", "naive"):
        for _ in range(2):
            summary = replay(str(tmp_path / f"{name}.parquet"), "--data-dir", str(tmp_path / name))
        assert (summary["windows"], summary["rejected"]) == (2, 1)
        db = tmp_path / name / "tickwatch.db"
        assert table(db, "select count(*) from dead_letters") == [(1,)]
    query = "select * from clean_market_data order by window_start"
    assert table(tmp_path / "aware" / "tickwatch.db", query) == table(
        tmp_path / "naive" / "tickwatch.db", query
    )
