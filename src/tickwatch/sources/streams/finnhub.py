"""Finnhub: US stock trades over WebSocket (free key, `FINNHUB_API_KEY`).

- Connect to `wss://ws.finnhub.io?token=KEY` (the key is in the URL, so logs and health show
  the URL without it), then one `{"type":"subscribe","symbol":"AAPL"}` per symbol.
- Trades: `{"type":"trade","data":[{"s":"AAPL","p":227.1,"v":100,"t":1700000000123,
  "c":["1","12"]}, ...]}`: symbol, price, volume (shares), time in ms, trade conditions.
  `{"type":"ping"}` is the venue's heartbeat; `{"type":"error","msg":...}` a refusal.
- Trades carry no id and Finnhub has no trade history endpoint on the free plan, so an outage
  cannot be backfilled: it is recorded as a data-quality event, and nothing is deduplicated.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from urllib.parse import urlencode

import orjson

from tickwatch.config import Settings
from tickwatch.errors import ConfigError
from tickwatch.model import EPOCH, AssetType
from tickwatch.sources.fetch import Fetcher
from tickwatch.sources.streams.trades import Event, Trade, VenueError


def trade_of(row: object) -> Trade:
    if not isinstance(row, dict):
        raise TypeError(f"trade {str(row)[:60]} is not an object")
    millis = row["t"]
    if isinstance(millis, bool) or not isinstance(millis, int) or not 0 <= millis < 10**14:
        raise ValueError(f"trade time t {millis!r} is not epoch milliseconds")
    symbol = row["s"]
    if not isinstance(symbol, str):
        raise TypeError("trade symbol s is not text")
    return Trade(
        symbol=symbol,
        market=symbol,
        time=EPOCH + timedelta(milliseconds=millis),
        price=float(row["p"]),
        size=float(row["v"]),
    )


class Finnhub:
    name = "finnhub"
    asset_type = AssetType.STOCK
    numbered = False
    idle_timeout: float | None = 60.0  # pings are sparse

    def __init__(self, settings: Settings) -> None:
        key = settings.finnhub_api_key.get_secret_value() if settings.finnhub_api_key else ""
        if not key:
            raise ConfigError(
                "STOCK_SOURCE=finnhub needs FINNHUB_API_KEY: get a free key at "
                "https://finnhub.io/register, or use STOCK_SOURCE=alphavantage"
            )
        self.symbols = list(settings.stock_symbols)
        self.label = settings.finnhub_ws_url
        self.url = f"{settings.finnhub_ws_url}?{urlencode({'token': key})}"

    def subscribe(self) -> list[str]:
        return [orjson.dumps({"type": "subscribe", "symbol": s}).decode() for s in self.symbols]

    def parse(self, text: str) -> list[Event]:
        body = orjson.loads(text)
        if not isinstance(body, dict):
            raise TypeError(f"message is a {type(body).__name__}, expected an object")
        kind = body.get("type")
        if kind == "trade":
            data = body["data"]
            if not isinstance(data, list):
                raise TypeError("trade data is not a list")
            return [trade_of(row) for row in data]
        if kind == "ping":
            return []
        if kind == "error":
            return [VenueError(str(body.get("msg", "")))]
        raise ValueError(f"unknown message type {kind!r}")

    def backfill(
        self, fetcher: Fetcher, market: str, after: Trade, before: int | None, stop: threading.Event
    ) -> list[Trade]:
        raise NotImplementedError
