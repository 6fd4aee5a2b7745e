"""CoinGecko crypto: a warm start from the 5-minute market chart, then `/simple/price` polls.

- **Warm start**: `/coins/{id}/market_chart?vs_currency=usd&days=1` answers
  `{"prices": [[ms, price], ...], "market_caps": [...], "total_volumes": [...]}` with one
  point every 5 minutes over the last day (288 points). Each price point becomes a tick at its
  timestamp, so the baselines have a day of windows before the first live poll.
- **Live**: `/simple/price?ids=...&vs_currencies=usd&include_24hr_vol=true&
  include_last_updated_at=true` answers `{"bitcoin": {"usd": 67187.3, "usd_24h_vol": 3.1e10,
  "last_updated_at": 1711356300}, ...}` for all coins in one call. The tick's event time is
  `last_updated_at`; a poll that repeats the last update of a coin emits nothing for it.
- A chart ends with the current price, stamped to the whole second; when it repeats the
  final sample (same second, same price) it is dropped, not counted twice.
- **Volume is null, always.** Both endpoints only know the rolling 24-hour volume. The
  difference of two rolling sums is not the volume between them (it also subtracts what fell
  out of the 24-hour span), so no honest interval volume can be derived; the ticks carry
  `volume: null` and crypto windows have no volume feature (`volume_surge` is never scored).
- `/coins/{id}/ohlc` is not used: for one day it has 30-minute candles stamped at their close,
  which cannot be placed inside a 5-minute window without inventing when each price happened.

An optional demo key goes in the `x-cg-demo-api-key` header. Calls are spaced at least
`60 / COINGECKO_CALLS_PER_MINUTE` seconds apart; HTTP 429 is retried after `Retry-After`
(or with backoff), and a longer `Retry-After` pauses the source for that long.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tickwatch.config import Settings
from tickwatch.errors import RateLimited, SourceError
from tickwatch.model import EPOCH
from tickwatch.sources import Record, SourceHealth
from tickwatch.sources.fetch import Fetcher, Stopped

log = logging.getLogger(__name__)

SOURCE_NAME = "coingecko"
KEY_HEADER = "x-cg-demo-api-key"
RATE_LIMIT_PAUSE = 60.0


def _moment(value: object, scale: float) -> datetime | None:
    """Epoch `value / scale` seconds as aware UTC, or None if it is not a sane number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / scale
    if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        return None
    return EPOCH + timedelta(seconds=seconds)


def _record(
    coin: str, moment: datetime | None, raw_time: object, price: object, ingest: datetime
) -> dict[str, Any]:
    return {
        "source": SOURCE_NAME,
        "asset_type": "crypto",
        "symbol": coin,
        "event_time": moment.isoformat() if moment else raw_time,
        "ingest_time": ingest.isoformat(),
        "price": price,
        "volume": None,
    }


def _object(body: object, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise SourceError(f"{what}: body is a {type(body).__name__}, expected a JSON object")
    if "error" in body:
        raise SourceError(f"{what}: CoinGecko error: {body['error']}")
    return body


def parse_market_chart(
    body: object, coin: str, ingest: datetime
) -> list[tuple[datetime | None, dict[str, Any]]]:
    """(time or None when unreadable, record) for each price point, oldest first."""
    prices = _object(body, f"market_chart {coin}").get("prices")
    if not isinstance(prices, list):
        raise SourceError(f"market_chart {coin}: no 'prices' list in the body")
    points: list[tuple[datetime | None, dict[str, Any]]] = []
    for point in prices:
        raw_time, price = (
            (point[0], point[1]) if isinstance(point, list) and len(point) == 2 else (point, None)
        )
        moment = _moment(raw_time, 1000.0)
        points.append((moment, _record(coin, moment, raw_time, price, ingest)))
    points.sort(key=lambda p: (p[0] is None, p[0] or ingest))
    return _without_repeats(points)


def _without_repeats(
    points: list[tuple[datetime | None, dict[str, Any]]],
) -> list[tuple[datetime | None, dict[str, Any]]]:
    """Drop a point in the same second as the one before it with the same price: a chart's
    last point is the current price stamped to the whole second, and it often repeats the
    final sample (recorded: ...594955 and ...594000 ms, one price), which would otherwise be
    two observations of one trade."""
    kept: list[tuple[datetime | None, dict[str, Any]]] = []
    for moment, record in points:
        if kept and moment is not None and (before := kept[-1][0]) is not None:
            same_second = before.replace(microsecond=0) == moment.replace(microsecond=0)
            if same_second and kept[-1][1]["price"] == record["price"]:
                continue
        kept.append((moment, record))
    return kept


def parse_simple_price(
    body: object, coins: Sequence[str], ingest: datetime
) -> tuple[list[tuple[datetime | None, dict[str, Any]]], list[str]]:
    """(time, record) per coin found, and the coins the body does not price."""
    data = _object(body, "simple/price")
    found: list[tuple[datetime | None, dict[str, Any]]] = []
    missing: list[str] = []
    for coin in coins:
        entry = data.get(coin)
        if not isinstance(entry, Mapping) or "usd" not in entry:
            missing.append(coin)
            continue
        raw_time = entry.get("last_updated_at")
        moment = _moment(raw_time, 1.0)
        found.append((moment, _record(coin, moment, raw_time, entry["usd"], ingest)))
    return found, missing


class CoinGeckoSource:
    name = SOURCE_NAME

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] | None = None,
        rounds: int | None = None,
        warm_start: bool = True,
        give_up_after: int | None = None,
    ) -> None:
        """`rounds` successful polls end the stream (None: never); `give_up_after` failed
        polls in a row end it too (each already retried by the Fetcher), so `produce crypto
        --once` offline stops instead of polling an unreachable API for ever."""
        if not settings.crypto_ids:
            raise SourceError("CRYPTO_IDS is empty: name at least one CoinGecko coin id")
        self.coins = list(settings.crypto_ids)
        self.base = settings.coingecko_base_url.rstrip("/")
        key = settings.coingecko_api_key.get_secret_value() if settings.coingecko_api_key else ""
        self.headers = {KEY_HEADER: key} if key else {}
        self.spacing = timedelta(seconds=60.0 / settings.coingecko_calls_per_minute)
        self.poll_interval = timedelta(seconds=settings.crypto_poll_interval)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rounds = rounds
        self.give_up_after = give_up_after
        self.client = client or httpx.Client(timeout=settings.request_timeout)
        self.fetcher = Fetcher(self.client, self.clock, on_request=self._count)
        self.health = SourceHealth(state="starting", message="warm start pending")
        self.calls = 0
        self._warm = set() if warm_start else set(self.coins)
        self._last: dict[str, datetime] = {}
        self._next_at: datetime | None = None

    def _count(self) -> None:
        self.calls += 1
        self.health.figures["calls_made"] = self.calls

    def warm(self, coin: str, stop: threading.Event) -> list[Record]:
        """A day of 5-minute prices for `coin` (one call)."""
        body = self.fetcher.get_json(
            f"{self.base}/coins/{coin}/market_chart",
            stop,
            params={"vs_currency": "usd", "days": "1"},
            headers=self.headers,
        )
        return self._fresh(parse_market_chart(body, coin, self.clock()))

    def poll(self, stop: threading.Event) -> list[Record]:
        """The latest price of every coin (one call); coins not updated since emit nothing."""
        body = self.fetcher.get_json(
            f"{self.base}/simple/price",
            stop,
            params={
                "ids": ",".join(self.coins),
                "vs_currencies": "usd",
                "include_24hr_vol": "true",
                "include_last_updated_at": "true",
            },
            headers=self.headers,
        )
        found, missing = parse_simple_price(body, self.coins, self.clock())
        if missing:
            log.warning("coingecko has no USD price for %s: check CRYPTO_IDS", ", ".join(missing))
        self.health.figures["unpriced"] = missing
        return self._fresh(found)

    def _fresh(self, points: list[tuple[datetime | None, dict[str, Any]]]) -> list[Record]:
        records: list[Record] = []
        for moment, record in points:
            coin = record["symbol"]
            last = self._last.get(coin)
            if moment is None:
                records.append(record)  # unreadable time: a dead letter with its reason
            elif last is None or moment > last:
                records.append(record)
                self._last[coin] = moment
        return records

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]:
        for coin in self.coins:
            if coin in self._warm:
                continue
            if not self._wait_turn(stop):
                return
            try:
                records = self.warm(coin, stop)
            except Stopped:
                return
            except SourceError as exc:
                self._failed(exc, coin)
                continue
            self._warm.add(coin)
            self._succeeded(f"warm start {coin}: {len(records)} points")
            if records:
                yield records
        done = failed = 0
        while not stop.is_set():
            if not self._wait_turn(stop):
                return
            try:
                records = self.poll(stop)
            except Stopped:
                return
            except SourceError as exc:
                self._failed(exc, None)
                failed += 1
                if self.give_up_after is not None and failed >= self.give_up_after:
                    return
                continue
            failed = 0
            self._next_at = self.clock() + max(self.poll_interval, self.spacing)
            self._succeeded(f"{len(records)} new prices")
            if records:
                yield records
            done += 1
            if self.rounds is not None and done >= self.rounds:
                return

    def _wait_turn(self, stop: threading.Event) -> bool:
        now = self.clock()
        at = self._next_at or now
        self.health.figures["next_call_at"] = at.isoformat()
        wait = (at - now).total_seconds()
        if wait > 0 and stop.wait(wait):
            return False
        self._next_at = self.clock() + self.spacing
        return not stop.is_set()

    def _failed(self, exc: SourceError, coin: str | None) -> None:
        now = self.clock()
        if isinstance(exc, RateLimited):
            pause = exc.retry_after or RATE_LIMIT_PAUSE
            self._next_at = now + timedelta(seconds=pause)
            self.health.state = "paused"
            self.health.message = f"rate limited until {self._next_at:%H:%M:%S} UTC: {exc}"
        else:
            self._next_at = now + max(self.poll_interval, self.spacing)
            self.health.state = "degraded"
            self.health.message = str(exc)
        log.warning("coingecko%s: %s", f" {coin}" if coin else "", exc)

    def _succeeded(self, message: str) -> None:
        self.health.state = "ok"
        self.health.message = message
        self.health.last_success = self.clock()
