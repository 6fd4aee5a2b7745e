"""Coinbase Exchange: the `matches` channel (one message per trade) and `heartbeat`.

- Subscribe: `{"type":"subscribe","product_ids":["BTC-USD"],"channels":["matches","heartbeat"]}`;
  the venue acks with `{"type":"subscriptions",...}` or answers
  `{"type":"error","message":"Failed to subscribe","reason":"..."}`.
- `match` (and `last_match`, the newest trade before the subscription): `trade_id` (number),
  `price` and `size` (strings), `time` (ISO 8601, `Z`, 3 to 6 fractional digits),
  `product_id`, `sequence`.
- Gaps are found by `trade_id`, which runs contiguously per product. `sequence` is no use
  for that: it counts every order event of the product, so it jumps between two matches.
  `heartbeat` (once a second per product) carries `last_trade_id`, so a gap shows even when
  no trade follows it.
- Backfill: `GET /products/{id}/trades?after=N&limit=100` answers the 100 trades with ids below
  N, newest first (the id of the oldest is the next page's `after`, also sent as `cb-after`).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from tickwatch.config import Settings
from tickwatch.errors import SourceError
from tickwatch.model import AssetType
from tickwatch.sources.fetch import Fetcher
from tickwatch.sources.streams.symbols import canonical, ticker
from tickwatch.sources.streams.trades import Event, Heartbeat, Trade, VenueError

PAGE = 100
MAX_PAGES = 50  # 5,000 trades per gap; what is older is recorded as unfilled


def _time(text: object) -> datetime:
    if not isinstance(text, str):
        raise TypeError(f"time is {type(text).__name__}, expected ISO 8601 text")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def symbol_of(product: str) -> str:
    base, quote = product.split("-")
    return canonical(base, quote)


def trade_of(body: dict[str, Any], product: str) -> Trade:
    """A REST or WebSocket trade of `product` (the message's product_id wins when present)."""
    product = body.get("product_id", product)
    trade_id = int(body["trade_id"])
    return Trade(
        symbol=symbol_of(product),
        market=product,
        time=_time(body["time"]),
        price=float(body["price"]),
        size=float(body["size"]),
        trade_id=trade_id,
        key=trade_id,
    )


class Coinbase:
    name = "coinbase"
    asset_type = AssetType.CRYPTO
    numbered = True
    idle_timeout: float | None = 10.0  # the heartbeat channel speaks every second

    def __init__(self, settings: Settings) -> None:
        self.products = [f"{ticker(coin, self.name)}-USD" for coin in settings.crypto_ids]
        self.url = self.label = settings.coinbase_ws_url
        self.rest = settings.coinbase_rest_url.rstrip("/")

    def subscribe(self) -> list[str]:
        message = {
            "type": "subscribe",
            "product_ids": self.products,
            "channels": ["matches", "heartbeat"],
        }
        return [orjson.dumps(message).decode()]

    def parse(self, text: str) -> list[Event]:
        body = orjson.loads(text)
        if not isinstance(body, dict):
            raise TypeError(f"message is a {type(body).__name__}, expected an object")
        kind = body.get("type")
        if kind in ("match", "last_match"):
            return [trade_of(body, str(body["product_id"]))]
        if kind == "heartbeat":
            return [Heartbeat(str(body["product_id"]), int(body["last_trade_id"]))]
        if kind == "error":
            return [VenueError(f"{body.get('message', '')}: {body.get('reason', '')}")]
        if kind in ("subscriptions", "ticker", "received", "open", "done", "change"):
            return []
        raise ValueError(f"unknown message type {kind!r}")

    def backfill(
        self, fetcher: Fetcher, market: str, after: Trade, before: int | None, stop: threading.Event
    ) -> list[Trade]:
        """Pages newest first from id `before` (or the newest trade) down to `after`."""
        assert after.trade_id is not None
        trades: list[Trade] = []
        cursor = before
        for _ in range(MAX_PAGES):
            params = {"limit": str(PAGE)}
            if cursor is not None:
                params["after"] = str(cursor)
            page = fetcher.get_json(f"{self.rest}/products/{market}/trades", stop, params=params)
            if not isinstance(page, list):
                raise SourceError(f"coinbase trades {market}: body is not a list")
            try:
                batch = [trade_of(row, market) for row in page]
            except (KeyError, TypeError, ValueError) as exc:
                raise SourceError(f"coinbase trades {market}: unreadable row: {exc}") from None
            trades.extend(batch)
            if len(batch) < PAGE:
                break
            oldest = min(t.trade_id for t in batch if t.trade_id is not None)
            if oldest <= after.trade_id + 1:
                break
            cursor = oldest
        return trades
