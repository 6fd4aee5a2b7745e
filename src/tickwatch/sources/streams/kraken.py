"""Kraken WebSocket API v1: the `trade` channel.

- Subscribe: `{"event":"subscribe","pair":["XBT/USD"],"subscription":{"name":"trade"}}`; one
  `subscriptionStatus` per pair answers, `"status":"error"` with `errorMessage` when refused.
  `systemStatus` opens the session; `{"event":"heartbeat"}` comes about once a second.
- Trades: `[channelID, [[price, volume, time, side, type, misc], ...], "trade", "XBT/USD"]`,
  one array per message, sometimes several trades. Price, volume and time are strings
  (`"1618678142.557535"`, seconds with 6 decimals).
- v1 trades carry no trade id, so a gap cannot be seen while connected; after a reconnect
  each pair is backfilled from `GET /0/public/Trades?pair=XBTUSD&since=<ns>` (up to 1000 rows
  `[price, volume, time (float), side, type, misc, trade_id]`, oldest first, and `last`, the
  cursor of the next page). Live and REST trades are matched by their time to the
  microsecond, price and volume (two fills equal in all three count once).
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal, InvalidOperation

import orjson

from tickwatch.config import Settings
from tickwatch.errors import SourceError
from tickwatch.model import EPOCH, AssetType
from tickwatch.sources.fetch import Fetcher
from tickwatch.sources.streams.symbols import canonical, ticker
from tickwatch.sources.streams.trades import Event, Trade, VenueError

PAGE = 1000
MAX_PAGES = 10
_US = Decimal("0.000001")


def _micros(seconds: object) -> int:
    """Epoch seconds (text or float, as Kraken sends them) to whole microseconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, str | int | float):
        raise TypeError(f"time is {type(seconds).__name__}, expected seconds")
    try:
        value = Decimal(str(seconds))
        if not value.is_finite() or not 0 <= value < 10**11:
            raise ValueError(f"time {seconds!r} is out of range")
        return int(value.quantize(_US) * 1_000_000)
    except InvalidOperation:
        raise ValueError(f"time {seconds!r} is not a number") from None


def _number(text: object) -> Decimal:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not finite")
    return value.normalize()


def trade_of(row: object, pair: str) -> Trade:
    """One trade row of the WebSocket (6 fields) or REST (7 fields, trade id last)."""
    if not isinstance(row, list) or len(row) < 3:
        raise TypeError(f"trade row {str(row)[:60]} is not [price, volume, time, ...]")
    price, volume, micros = _number(row[0]), _number(row[1]), _micros(row[2])
    base, quote = pair.split("/")
    return Trade(
        symbol=canonical(base, quote),
        market=pair,
        time=EPOCH + timedelta(microseconds=micros),
        price=float(price),
        size=float(volume),
        key=(micros, price, volume),
    )


class Kraken:
    name = "kraken"
    asset_type = AssetType.CRYPTO
    numbered = False
    idle_timeout: float | None = 10.0  # a heartbeat every second when no trade

    def __init__(self, settings: Settings) -> None:
        self.pairs = [f"{_kraken_ticker(ticker(c, self.name))}/USD" for c in settings.crypto_ids]
        self.url = self.label = settings.kraken_ws_url
        self.rest = settings.kraken_rest_url.rstrip("/")

    def subscribe(self) -> list[str]:
        message = {"event": "subscribe", "pair": self.pairs, "subscription": {"name": "trade"}}
        return [orjson.dumps(message).decode()]

    def parse(self, text: str) -> list[Event]:
        body = orjson.loads(text)
        if isinstance(body, list):
            if len(body) != 4 or body[2] != "trade" or not isinstance(body[1], list):
                raise ValueError("array is not [channelID, trades, 'trade', pair]")
            pair = str(body[3])
            return [trade_of(row, pair) for row in body[1]]
        if not isinstance(body, dict):
            raise TypeError(f"message is a {type(body).__name__}, expected an object or array")
        event = body.get("event")
        if event == "subscriptionStatus" and body.get("status") == "error":
            return [VenueError(f"{body.get('pair', '')}: {body.get('errorMessage', '')}")]
        if event == "error":
            return [VenueError(str(body.get("errorMessage", body)))]
        if event in ("heartbeat", "systemStatus", "subscriptionStatus", "pong"):
            return []
        raise ValueError(f"unknown event {event!r}")

    def backfill(
        self, fetcher: Fetcher, market: str, after: Trade, before: int | None, stop: threading.Event
    ) -> list[Trade]:
        """Trades of `market` from `after`'s time on (Kraken pages by time, oldest first)."""
        since = int((after.time - EPOCH).total_seconds()) * 10**9 + after.time.microsecond * 1000
        trades: list[Trade] = []
        for _ in range(MAX_PAGES):
            body = fetcher.get_json(
                f"{self.rest}/0/public/Trades",
                stop,
                params={"pair": market.replace("/", ""), "since": str(since)},
            )
            if not isinstance(body, dict) or body.get("error"):
                error = body.get("error") if isinstance(body, dict) else "not an object"
                raise SourceError(f"kraken trades {market}: {error}")
            result = body.get("result")
            if not isinstance(result, dict):
                raise SourceError(f"kraken trades {market}: no result")
            rows = next((v for k, v in result.items() if k != "last" and isinstance(v, list)), [])
            try:
                trades.extend(trade_of(row, market) for row in rows)
                cursor = int(str(result.get("last", since)))
            except (TypeError, ValueError) as exc:
                raise SourceError(f"kraken trades {market}: unreadable row: {exc}") from None
            if len(rows) < PAGE or cursor <= since:
                break
            since = cursor
        return trades


def _kraken_ticker(symbol: str) -> str:
    """Kraken v1 pairs still call bitcoin XBT and dogecoin XDG."""
    return {"BTC": "XBT", "DOGE": "XDG"}.get(symbol, symbol)
