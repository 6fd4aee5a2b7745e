"""Binance spot: the `aggTrade` stream (one message per taker order's fills at one price).

- Subscribe on the raw stream root (`/ws`):
  `{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}`; the answer is
  `{"result":null,"id":1}`, or `{"error":{"code":..,"msg":..},"id":1}` when refused.
- `aggTrade`: `a` (aggregate trade id, contiguous per symbol), `p` and `q` (strings), `T`
  (trade time, ms), `s` (symbol). The combined stream wraps each message as
  `{"stream":..,"data":..}`; both forms are read. `trade` messages (`t` the trade id) are read
  too. Binance sends WebSocket pings, which the client answers.
- Backfill: `GET /api/v3/aggTrades?symbol=BTCUSDT&fromId=N&limit=1000` answers the aggregate
  trades from id N on, oldest first, in the same shape.
- Binance quotes in USDT, not USD, so `BTCUSDT` is the series `bitcoin-usdt`.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import orjson

from tickwatch.config import Settings
from tickwatch.errors import SourceError
from tickwatch.model import EPOCH, AssetType
from tickwatch.sources.fetch import Fetcher
from tickwatch.sources.streams.symbols import canonical, split_glued, ticker
from tickwatch.sources.streams.trades import Event, Trade, VenueError

PAGE = 1000
MAX_PAGES = 5


def trade_of(body: dict[str, Any], market: str) -> Trade:
    """An aggTrade (`a`) or trade (`t`) message, or an aggTrades REST row of `market`."""
    market = str(body.get("s", market))
    millis = body["T"]
    if isinstance(millis, bool) or not isinstance(millis, int) or not 0 <= millis < 10**14:
        raise ValueError(f"trade time T {millis!r} is not epoch milliseconds")
    trade_id = body["a"] if "a" in body and body.get("e") != "trade" else body["t"]
    if isinstance(trade_id, bool) or not isinstance(trade_id, int):
        raise TypeError(f"trade id {trade_id!r} is not a number")
    return Trade(
        symbol=canonical(*split_glued(market)),
        market=market,
        time=EPOCH + timedelta(milliseconds=millis),
        price=float(body["p"]),
        size=float(body["q"]),
        trade_id=trade_id,
        key=trade_id,
    )


class Binance:
    name = "binance"
    asset_type = AssetType.CRYPTO
    numbered = True
    idle_timeout: float | None = None  # no heartbeat messages, only pings

    def __init__(self, settings: Settings) -> None:
        self.markets = [f"{ticker(coin, self.name)}USDT" for coin in settings.crypto_ids]
        self.url = self.label = settings.binance_ws_url
        self.rest = settings.binance_rest_url.rstrip("/")

    def subscribe(self) -> list[str]:
        streams = [f"{market.lower()}@aggTrade" for market in self.markets]
        return [orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}).decode()]

    def parse(self, text: str) -> list[Event]:
        body = orjson.loads(text)
        if not isinstance(body, dict):
            raise TypeError(f"message is a {type(body).__name__}, expected an object")
        if isinstance(body.get("data"), dict):
            body = body["data"]
        kind = body.get("e")
        if kind in ("aggTrade", "trade"):
            return [trade_of(body, str(body["s"]))]
        if "error" in body:
            error = body["error"]
            text = error.get("msg", error) if isinstance(error, dict) else error
            return [VenueError(str(text))]
        if "result" in body or kind in ("kline", "depthUpdate", "bookTicker", "24hrTicker"):
            return []
        raise ValueError(f"unknown message {str(body)[:60]}")

    def backfill(
        self, fetcher: Fetcher, market: str, after: Trade, before: int | None, stop: threading.Event
    ) -> list[Trade]:
        """Aggregate trades from `after.trade_id + 1` up to `before` (or as far as pages go)."""
        assert after.trade_id is not None
        trades: list[Trade] = []
        start = after.trade_id + 1
        for _ in range(MAX_PAGES):
            rows = fetcher.get_json(
                f"{self.rest}/api/v3/aggTrades",
                stop,
                params={"symbol": market, "fromId": str(start), "limit": str(PAGE)},
            )
            if not isinstance(rows, list):
                raise SourceError(f"binance aggTrades {market}: body is not a list")
            try:
                page = [trade_of(row, market) for row in rows]
            except (KeyError, TypeError, ValueError) as exc:
                raise SourceError(f"binance aggTrades {market}: unreadable row: {exc}") from None
            trades.extend(page)
            if len(page) < PAGE:
                break
            start = max(t.trade_id or 0 for t in page) + 1
            if before is not None and start >= before:
                break
        return trades
