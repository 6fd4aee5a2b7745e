"""The real captures (shared/datasets/recorded/streams) replayed frame by frame from a loopback
venue: every trade arrives once, nothing real is a dead letter, and contiguous trade ids
raise no false gap (no REST call)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer

from tests.integration.stream_venue import LoopbackVenue
from tests.integration.test_stream_coinbase import collect, trades_of
from tickwatch.config import Settings
from tickwatch.normalize import UnreadableRecord
from tickwatch.sources.streams import stream_source

STREAMS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "recorded" / "streams"


def frames(name: str) -> list[str]:
    return [line for line in (STREAMS / name).read_text().splitlines() if line.strip()]


def replay(venue_name: str, capture: str, trades: int, server: HTTPServer, tmp_path: Path) -> Any:
    with LoopbackVenue([frames(capture)]) as venue:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "crypto_ids": ["bitcoin"],
            f"{venue_name}_ws_url": venue.url,
            f"{venue_name}_rest_url": server.url_for(""),
        }
        source = stream_source(Settings(_env_file=None, **values), venue_name)  # type: ignore[call-arg]
        records = collect(source, lambda rs: venue.played.is_set() and len(trades_of(rs)) >= trades)
    return source, records


def test_the_coinbase_capture(tmp_path, httpserver):
    source, records = replay(
        "coinbase", "coinbase_ws_feed_matches_ticker_extract.jsonl", 107, httpserver, tmp_path
    )
    assert [r for r in records if isinstance(r, UnreadableRecord)] == []
    trades = trades_of(records)
    assert len(trades) == 107  # 97 matches and 10 last_matches, none twice
    assert len({(t["market"], t["trade_id"]) for t in trades}) == 107
    assert source.health.figures["gaps"] == 0 and httpserver.log == []
    skl = [t for t in trades if t["market"] == "SKL-USD"]
    assert round(sum(t["volume"] for t in skl), 6) == 48069.6  # summed with bc from the file


def test_the_kraken_capture(tmp_path, httpserver):
    _, records = replay("kraken", "kraken_ws_v1_trade_extract.jsonl", 10, httpserver, tmp_path)
    assert [r for r in records if isinstance(r, UnreadableRecord)] == []
    assert [(t["market"], t["price"]) for t in trades_of(records)][:2] == [
        ("XMR/USD", 354.11),
        ("XMR/USD", 354.55),
    ]
    assert len(trades_of(records)) == 10 and httpserver.log == []


def test_the_binance_capture(tmp_path, httpserver):
    source, records = replay(
        "binance", "binance_ws_aggTrade_kline_1m_extract.jsonl", 24, httpserver, tmp_path
    )
    assert [r for r in records if isinstance(r, UnreadableRecord)] == []
    assert len(trades_of(records)) == 24  # aggTrade ids contiguous per symbol: no gap
    assert source.health.figures["gaps"] == 0 and httpserver.log == []
