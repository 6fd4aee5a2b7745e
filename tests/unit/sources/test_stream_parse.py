"""The venues' parsers on the real captures in shared/datasets/recorded/streams (SOURCES.md there
lists each file's origin and quirks). Expected values are read by hand from those files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tickwatch.config import load_settings
from tickwatch.errors import ConfigError
from tickwatch.sources.streams.binance import Binance
from tickwatch.sources.streams.coinbase import Coinbase
from tickwatch.sources.streams.coinbase import trade_of as coinbase_trade
from tickwatch.sources.streams.finnhub import Finnhub
from tickwatch.sources.streams.kraken import Kraken
from tickwatch.sources.streams.kraken import trade_of as kraken_trade
from tickwatch.sources.streams.symbols import canonical, split_glued
from tickwatch.sources.streams.trades import Heartbeat, Trade, VenueError

STREAMS = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "recorded" / "streams"


def lines(name: str) -> list[str]:
    return [line for line in (STREAMS / name).read_text().splitlines() if line.strip()]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def settings():
    return load_settings(crypto_ids=["bitcoin", "ethereum"], finnhub_api_key="fh-secret-1")


# -- symbols ---------------------------------------------------------------------------------


def test_one_canonical_symbol_per_asset_and_quote():
    assert canonical("BTC", "USD") == canonical("XBT", "USD") == "bitcoin"
    assert canonical(*split_glued("BTCUSDT")) == "bitcoin-usdt"  # USDT is not USD
    assert canonical("SKL", "GBP") == "skl-gbp"  # no coin id known: the ticker, lower case
    assert split_glued("SWRVBUSD") == ("SWRV", "BUSD")
    with pytest.raises(ValueError, match="no known quote"):
        split_glued("BTCXYZ")


def test_venues_subscribe_to_the_markets_of_crypto_ids(settings):
    assert json.loads(Coinbase(settings).subscribe()[0])["product_ids"] == ["BTC-USD", "ETH-USD"]
    assert json.loads(Kraken(settings).subscribe()[0])["pair"] == ["XBT/USD", "ETH/USD"]
    assert json.loads(Binance(settings).subscribe()[0])["params"] == [
        "btcusdt@aggTrade",
        "ethusdt@aggTrade",
    ]
    with pytest.raises(ConfigError, match="CRYPTO_IDS names 'no-such-coin'"):
        Coinbase(load_settings(crypto_ids=["no-such-coin"]))


# -- Coinbase --------------------------------------------------------------------------------


def test_coinbase_capture_matches_and_last_matches_become_trades(settings):
    venue = Coinbase(settings)
    events = [
        event
        for line in lines("coinbase_ws_feed_matches_ticker_extract.jsonl")
        for event in venue.parse(line)
    ]
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(trades) == len(events) == 97 + 10  # matches + last_matches; tickers, acks ignored
    first_match = trades[10]  # the ten last_matches come first
    assert first_match == Trade(
        "skl-btc", "SKL-BTC", utc("2021-04-17T16:43:37.089723"), 0.00001305, 985.0, 280232, 280232
    )
    skl = [t for t in trades if t.market == "SKL-USD"]
    assert [t.trade_id for t in skl] == list(range(1568267, 1568320))  # contiguous, 53 trades
    assert sum(t.size for t in skl) == pytest.approx(48069.6)  # summed with bc from the file
    assert {t.symbol for t in skl} == {"skl"}


def test_coinbase_heartbeat_error_and_garbage(settings):
    venue = Coinbase(settings)
    heartbeat = (
        '{"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",'
        '"time":"2014-11-07T08:19:28.464459Z"}'
    )
    assert venue.parse(heartbeat) == [Heartbeat("BTC-USD", 20)]
    refused = '{"type":"error","message":"Failed to subscribe","reason":"BTC-XYZ is not valid"}'
    assert venue.parse(refused) == [VenueError("Failed to subscribe: BTC-XYZ is not valid")]
    for bad in ("[1,2]", '{"type":"match","trade_id":1}', "not json", '{"type":"weird"}'):
        with pytest.raises((ValueError, KeyError, TypeError)):
            venue.parse(bad)


def test_coinbase_rest_bodies_with_short_fractions():
    page = json.loads(lines("coinbase_rest_products_trades_nock_bodies.jsonl")[0])
    trades = [coinbase_trade(row, "BTC-USD") for row in page]
    assert [t.trade_id for t in trades] == list(range(8408114, 8408014, -1))  # newest first
    quirk = next(t for t in trades if t.trade_id == 8408110)  # "15:04:30.98209Z": 5 digits
    assert quirk.time == utc("2016-05-12T15:04:30.982090")
    assert (quirk.symbol, quirk.price, quirk.size) == ("bitcoin", 453.32, 0.00923)


# -- Kraken ----------------------------------------------------------------------------------


def test_kraken_capture_trades_heartbeats_and_a_huge_connection_id(settings):
    venue = Kraken(settings)
    captured = lines("kraken_ws_v1_trade_extract.jsonl")
    # connectionID 18239578009413566319 > 2**63 must not break the session's first message
    assert venue.parse(captured[0]) == []
    trades = [e for line in captured for e in venue.parse(line)]
    assert len(trades) == 10  # 8 arrays, two of them with 2 trades
    xmr = [t for t in trades if t.market == "XMR/USD"]
    assert [(t.price, t.size, t.time) for t in xmr[:1]] == [
        (354.11, 0.89594024, utc("2021-04-17T16:49:02.557535"))
    ]
    assert len(xmr) == 4 and {t.symbol for t in xmr} == {"monero"}
    assert {t.symbol for t in trades if t.market == "SC/EUR"} == {"sc-eur"}


def test_kraken_refusal_and_rest_rows(settings):
    venue = Kraken(settings)
    refused = (
        '{"errorMessage":"Currency pair not supported XBT/EUX","event":"subscriptionStatus",'
        '"pair":"XBT/EUX","status":"error","subscription":{"name":"trade"}}'
    )
    assert venue.parse(refused) == [VenueError("XBT/EUX: Currency pair not supported XBT/EUX")]
    body = json.loads((STREAMS / "kraken_rest_public_trades_XBTUSDT.json").read_text())
    rows = body["result"]["XBTUSDT"]
    first = kraken_trade(rows[0], "XBT/USDT")
    # 1762795433.9717445 s: 7 decimals, half-way, rounded to the even microsecond
    assert first.time == utc("2025-11-10T17:23:53.971744")
    assert (first.symbol, first.price, first.size) == ("bitcoin-usdt", 105433.6, 0.00027625)
    # the WebSocket's text of the same moment, rounded the other way, is the same trade
    live = kraken_trade(["105433.60000", "0.00027625", "1762795433.971745"], "XBT/USDT")
    assert set(live.match_keys()) & set(first.match_keys())


# -- Binance ---------------------------------------------------------------------------------


def test_binance_capture_agg_trades_and_klines(settings):
    venue = Binance(settings)
    captured = lines("binance_ws_aggTrade_kline_1m_extract.jsonl")
    trades = [e for line in captured for e in venue.parse(line)]
    assert len(trades) == 24  # the 20 klines are ignored
    assert trades[0] == Trade(
        "swrv-busd", "SWRVBUSD", utc("2021-04-17T16:36:13.912"), 2.276, 21.963, 749094, 749094
    )
    single = venue.parse((STREAMS / "binance_ws_trade_ETHUSDT_single.json").read_text())
    assert single == [
        Trade(
            "ethereum-usdt",
            "ETHUSDT",
            utc("2021-12-12T23:17:42.243"),
            4149.74,
            0.4387,
            705291099,
            705291099,
        )
    ]
    assert venue.parse('{"result":null,"id":1}') == []
    refused = '{"error":{"code":2,"msg":"Invalid request: unknown stream"},"id":1}'
    assert venue.parse(refused) == [VenueError("Invalid request: unknown stream")]


# -- Finnhub (documented shape; no public capture) ------------------------------------------


def test_finnhub_trades_pings_and_errors(settings):
    venue = Finnhub(settings)
    message = (
        '{"type":"trade","data":[{"s":"AAPL","p":227.1,"v":100,"t":1700000000123,"c":["1"]},'
        '{"s":"MSFT","p":410.5,"v":3,"t":1700000000200}]}'
    )
    assert venue.parse(message) == [
        Trade("AAPL", "AAPL", utc("2023-11-14T22:13:20.123"), 227.1, 100.0),
        Trade("MSFT", "MSFT", utc("2023-11-14T22:13:20.200"), 410.5, 3.0),
    ]
    assert venue.parse('{"type":"ping"}') == []
    assert venue.parse('{"type":"error","msg":"Invalid API key"}') == [
        VenueError("Invalid API key")
    ]
    assert "fh-secret-1" in venue.url and "fh-secret-1" not in venue.label
    with pytest.raises(ConfigError, match="FINNHUB_API_KEY"):
        Finnhub(load_settings())
