"""`check`, `serve` and `produce` as a new user meets them: where the store is, what an empty
or old store says, and exit codes when nothing could be done.

The stores are real SQLite files; expected counts come from the hand-made windows below.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tickwatch.cli import app
from tickwatch.config import Settings
from tickwatch.model import AssetType, Window
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.store import SqlStore

NOW = datetime(2024, 3, 6, 16, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def window(symbol: str, start: datetime) -> Window:
    return Window(
        symbol=symbol,
        asset_type=AssetType.CRYPTO if symbol == "bitcoin" else AssetType.STOCK,
        window_start=start,
        window_end=start + FIVE,
        open=100.0,
        high=102.0,
        low=99.0,
        close=101.0,
        volume=10.0,
        tick_count=4,
        vwap=100.5,
        price_return_pct=1.0,
        volatility=1.0,
    )


def seed(folder: Path, newest_end: datetime, per_symbol: int = 12) -> Settings:
    """`per_symbol` windows of AAPL and bitcoin, the newest ending at `newest_end`."""
    settings = Settings(
        data_dir=folder, stock_symbols=["AAPL"], crypto_ids=["bitcoin"], _env_file=None
    )  # type: ignore[call-arg]
    store = SqlStore(settings.database_url)
    store.write(
        [
            window(s, newest_end - FIVE * (i + 1))
            for i in range(per_symbol)
            for s in ("AAPL", "bitcoin")
        ],
        [],
    )
    store.close()
    return settings


def said(text: str) -> str:
    """The words a person reads, without rich's line wrapping."""
    return " ".join(text.split())


def test_check_finds_the_simulated_store_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    seed(tmp_path / "data" / "simulated", datetime.now(UTC) - timedelta(minutes=10))
    done = CliRunner().invoke(app, ["check", "store", "price-sanity"])
    assert "no store at data/tickwatch.db; using the simulated run's store in" in said(done.output)
    assert done.exit_code == 0, done.output
    assert "24 windows in the last 24 h have sane prices" in said(done.output)  # 12 x 2 symbols
    assert not (tmp_path / "data" / "tickwatch.db").exists()


def test_check_without_any_store_says_so_and_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["check"])
    assert done.exit_code == 2
    assert "no store at data/tickwatch.db" in said(done.output)
    assert "run `tickwatch run` or `tickwatch replay` first" in said(done.output)
    assert not (tmp_path / "data").exists()


def test_serve_uses_the_simulated_store_without_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["serve", "--port", "1"])  # no store: refused at once
    assert done.exit_code == 2
    assert not (tmp_path / "data").exists()


def test_empty_store_has_nothing_to_judge(tmp_path: Path):
    settings = seed(tmp_path / "data", NOW, per_symbol=0)
    ctx = OpsContext(settings, now=NOW)
    for name in ("price-sanity", "anomaly-stats", "nulls", "duplicates"):
        result = run_check(name, ctx)
        assert result.verdict is Verdict.WARN, (name, result.message)
        assert "no windows in the last 24 h to judge" in result.message, name
    ctx.close()


def test_an_old_store_is_judged_on_its_own_last_day(tmp_path: Path):
    newest = NOW - timedelta(days=10)
    settings = seed(tmp_path / "data", newest)
    ctx = OpsContext(settings, now=NOW)
    result = run_check("price-sanity", ctx)
    assert result.verdict is Verdict.OK
    assert result.figures["windows"] == 24
    assert "24 h before the store's newest window (2024-02-25 16:00 UTC)" in result.message
    rows = run_check("rows-per-window", ctx)  # the hour before 15:50: 11 windows x 2 symbols
    assert rows.verdict is Verdict.OK, rows.message
    assert rows.figures["symbols"] == 2
    ctx.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("market", ["crypto", "stocks"])
def test_produce_once_with_the_api_unreachable_fails(market: str, tmp_path: Path):
    """A closed loopback port stands for an offline machine (the same ConnectError)."""
    url = f"http://127.0.0.1:{_closed_port()}/"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "COLUMNS": "200",
        "CRYPTO_SOURCE": "coingecko",
        "COINGECKO_BASE_URL": url,
        "ALPHA_VANTAGE_BASE_URL": url + "query",
        "ALPHA_VANTAGE_API_KEY": "testkey",
        "STOCK_SYMBOLS": "IBM",
        "DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tickwatch.cli", "produce", market, "--once", "--out", "t.jsonl"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    name = "coingecko" if market == "crypto" else "alphavantage"
    assert f"error: {name} --once wrote nothing" in done.stderr
    assert (tmp_path / "t.jsonl").read_bytes() == b""


def test_replay_of_an_unknown_file_type_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("hello\n")
    done = CliRunner().invoke(app, ["replay", "x.txt"])
    assert done.exit_code == 2
    assert "x.txt: unknown file type '.txt'; use .jsonl, .csv or .parquet" in said(done.output)
    assert "Traceback" not in said(done.output)
