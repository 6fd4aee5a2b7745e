"""Alpha Vantage stocks: `TIME_SERIES_INTRADAY` 5-minute bars, each bar emitted once.

The documented body is

    {"Meta Data": {..., "4. Interval": "5min", "6. Time Zone": "US/Eastern"},
     "Time Series (5min)": {"2024-03-08 15:55:00": {"1. open": "171.2000", "2. high": ...,
                                                    "3. low": ..., "4. close": ...,
                                                    "5. volume": "123456"}, ...}}

- Bar keys are wall-clock times in the zone `6. Time Zone` names (US/Eastern) and label the
  bar's start (the last bar of the 04:00-20:00 extended session is keyed 19:55); older
  responses labelled its end, which `label_shift` detects from the keys. Each becomes an
  aware UTC time with zoneinfo, so the offset is -05:00 before the March DST change and -04:00
  after it (and back in November). An ambiguous wall time (the repeated hour in November, not
  a trading hour) is read as its first occurrence.
- The tick's event time is the bar's start, so a bar lands in the window it belongs to; price
  is the close, volume the bar's own volume (a true interval volume), plus open/high/low/close.
- Every poll returns the latest 100 bars (`outputsize=compact`), mostly seen before: a bar is
  emitted once, when it is newer than the last bar emitted for its symbol and complete
  (its end is not after the source clock), so a bar still forming is never frozen half-done.
- HTTP 200 bodies that are not data: `Error Message` (bad symbol or key) marks the symbol
  failing; `Note` or `Information` about call frequency pauses a minute; about the daily limit
  ends the day's budget; any other `Information` (premium-only, demo key) marks the symbol
  failing. None of them is ever read as data.

Calls are planned by `CallBudget`: the first poll of each symbol (the warm start: up to 100
bars, about eight hours of the last trading session) goes as fast as the per-minute limit
allows, later polls are spread over the rest of the day.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import orjson

from tickwatch.config import Settings
from tickwatch.errors import RateLimited, SourceError
from tickwatch.sources import Record, SourceHealth
from tickwatch.sources.budget import CallBudget, next_midnight
from tickwatch.sources.fetch import Fetcher, Stopped

log = logging.getLogger(__name__)

SOURCE_NAME = "alphavantage"
INTERVAL = "5min"
BAR = timedelta(minutes=5)
SERIES_KEY = f"Time Series ({INTERVAL})"
DEFAULT_ZONE = "US/Eastern"
_FIELDS = {"open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume"}
_MINUTE_WORDS = ("per minute", "per second", "spreading out", "frequency", "burst")
_DAY_WORDS = ("per day", "daily")


class DailyLimitReached(RateLimited):
    """The API says the key's calls for today are spent."""


def check_body(body: object, symbol: str, now: datetime) -> Mapping[str, Any]:
    """The body as a mapping, or the error it stands for (never data)."""
    if not isinstance(body, Mapping):
        raise SourceError(f"{symbol}: body is a {type(body).__name__}, expected a JSON object")
    if "Error Message" in body:
        raise SourceError(f"{symbol}: Alpha Vantage error: {body['Error Message']}")
    for key in ("Note", "Information"):
        if key in body:
            text = str(body[key])
            lowered = text.lower()
            if any(word in lowered for word in _MINUTE_WORDS):
                raise RateLimited(f"{symbol}: per-minute limit ({key}): {text}", 60.0)
            if any(word in lowered for word in _DAY_WORDS):
                wait = (next_midnight(now) - now).total_seconds()
                raise DailyLimitReached(f"{symbol}: daily limit ({key}): {text}", wait)
            raise SourceError(f"{symbol}: Alpha Vantage refused ({key}): {text}")
    return body


def _number(value: object) -> object:
    """A float when the text is a number; otherwise the raw value, for a dead letter."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value


_SERIES_KEY = re.compile(r"Time Series \((\d+)min\)")
_REGULAR = (time(9, 30), time(16, 0))  # US equities' regular session, New York time
_EXTENDED = (time(4, 0), time(20, 0))  # with pre-market and after-hours


def label_shift(labels: Iterable[datetime], interval: timedelta) -> timedelta:
    """How far a bar's label lies after its start: 0, or one interval when bars are labelled
    by their end (Alpha Vantage did until about 2021; the 2024 and 2025 responses label starts).

    Detected from the data, never assumed: a series with any label before 09:30 or after 16:00
    has extended hours (04:00-20:00), otherwise regular hours (09:30-16:00). A label on the
    session's close (16:00 or 20:00) can only be an end, since no bar starts at the close; one
    on the session's open (09:30 or 04:00) can only be a start. A series showing neither (it
    starts and ends mid-session, like a 100-minute 1-min response) cannot tell: its labels are
    read as starts, today's convention."""
    clocks = {label.time() for label in labels}
    extended = any(c < _REGULAR[0] or c > _REGULAR[1] for c in clocks)
    opening, closing = _EXTENDED if extended else _REGULAR
    if closing in clocks and opening not in clocks:
        return interval
    return timedelta(0)


def _series(data: Mapping[str, Any], symbol: str) -> tuple[Mapping[str, Any], timedelta]:
    """The `Time Series (<n>min)` object and its interval, whatever the interval."""
    for key, value in data.items():
        match = _SERIES_KEY.fullmatch(str(key))
        if match and isinstance(value, Mapping):
            return value, timedelta(minutes=int(match.group(1)))
    keys = ", ".join(map(str, data)) or "none"
    raise SourceError(f"{symbol}: no {SERIES_KEY!r} object in the body (keys: {keys})")


def parse_intraday(
    body: object, symbol: str, ingest_time: datetime
) -> list[tuple[datetime | None, dict[str, Any]]]:
    """(bar start in UTC or None when unreadable, record) for every bar, oldest first."""
    data = check_body(body, symbol, ingest_time)
    series, interval = _series(data, symbol)
    meta = data.get("Meta Data")
    zone_name = str(meta.get("6. Time Zone", DEFAULT_ZONE)) if isinstance(meta, Mapping) else ""
    try:
        zone = ZoneInfo(zone_name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceError(f"{symbol}: unknown time zone {zone_name!r} in Meta Data") from None
    return _bars(series, symbol, ingest_time, zone, interval)


def parse_intraday_csv(
    text: str, symbol: str, ingest_time: datetime, interval: timedelta = BAR
) -> list[tuple[datetime | None, dict[str, Any]]]:
    """The same bars from a `datatype=csv` body (`timestamp,open,high,low,close,volume`,
    newest first, US/Eastern, no metadata). Errors still come as JSON objects."""
    text = text.removeprefix("\ufeff")  # a byte-order mark would rename the first column
    if text.lstrip().startswith("{"):
        check_body(orjson.loads(text), symbol, ingest_time)
        raise SourceError(f"{symbol}: a JSON object where CSV bars were expected")
    rows = csv.DictReader(io.StringIO(text))
    missing = {"timestamp", *_FIELDS} - set(rows.fieldnames or ())
    if missing:
        raise SourceError(f"{symbol}: CSV without the columns {', '.join(sorted(missing))}")
    series = {row["timestamp"]: row for row in rows}
    return _bars(series, symbol, ingest_time, ZoneInfo(DEFAULT_ZONE), interval)


def _bars(
    series: Mapping[str, Any],
    symbol: str,
    ingest_time: datetime,
    zone: ZoneInfo,
    interval: timedelta,
) -> list[tuple[datetime | None, dict[str, Any]]]:
    labels: dict[str, datetime] = {}
    for key in map(str, series):
        try:
            labels[key] = datetime.strptime(key, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    shift = label_shift(labels.values(), interval)
    bars: list[tuple[datetime | None, dict[str, Any]]] = []
    for key, values in series.items():
        local = labels.get(str(key))
        start = (local - shift).replace(tzinfo=zone).astimezone(UTC) if local else None
        record: dict[str, Any] = {
            "source": SOURCE_NAME,
            "asset_type": "stock",
            "symbol": symbol,
            "event_time": start.isoformat() if start else str(key),
            "ingest_time": ingest_time.isoformat(),
        }
        fields = values if isinstance(values, Mapping) else {}
        for name, value in fields.items():
            short = str(name).split(". ", 1)[-1]
            if short in _FIELDS:
                record[_FIELDS[short]] = _number(value)
        record["price"] = record.get("close")
        record.setdefault("volume", None)
        bars.append((start, record))
    bars.sort(key=lambda bar: (bar[0] is None, bar[0] or ingest_time))
    return bars


class _BudgetedClient(httpx.Client):
    """An HTTP client that counts each request that may have reached Alpha Vantage.

    A request that failed to connect (DNS lookup, refused connection, connect timeout) never
    reached the API, so it must not spend one of the 25 calls of the day: offline, a retried
    DNS failure would otherwise use up the budget before the first real call. Anything else
    counts, including a read timeout (the server may have counted it).
    """

    def __init__(self, on_call: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_call = on_call

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            response = super().send(request, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise
        except httpx.HTTPError:
            self._on_call()
            raise
        self._on_call()
        return response


class AlphaVantageSource:
    name = SOURCE_NAME

    def __init__(
        self,
        settings: Settings,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] | None = None,
        rounds: int | None = None,
    ) -> None:
        if not settings.stock_symbols:
            raise SourceError("STOCK_SYMBOLS is empty: name at least one ticker")
        self.symbols = list(settings.stock_symbols)
        self.url = settings.alpha_vantage_base_url
        self.api_key = settings.alpha_vantage_api_key.get_secret_value()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rounds = rounds
        self.budget = CallBudget(
            settings.alpha_vantage_calls_per_minute,
            settings.alpha_vantage_calls_per_day,
            min_spacing=settings.stock_poll_interval / len(self.symbols),
        )
        count = lambda: self.budget.record(self.clock())  # noqa: E731
        self.client = client or _BudgetedClient(count, timeout=settings.request_timeout)
        # a client of the caller's counts every attempt; ours skips those that never connected
        self.fetcher = Fetcher(self.client, self.clock, on_request=count if client else None)
        self.health = SourceHealth(state="starting", message="warm start pending")
        self._emitted: dict[str, datetime] = {}
        self._polled: set[str] = set()
        self._seen_bad: set[tuple[str, str]] = set()
        self._errors: dict[str, str] = {}
        self._resume_at: datetime | None = None
        if self.api_key == "demo" and self.symbols != ["IBM"]:
            others = ", ".join(s for s in self.symbols if s != "IBM")
            log.warning(
                "ALPHA_VANTAGE_API_KEY is 'demo': it serves only IBM, so STOCK_SYMBOLS %s will "
                "fail; get a free key at https://www.alphavantage.co/support/#api-key and set "
                "it in .env, or set STOCK_SYMBOLS=IBM",
                others,
            )

    def poll(self, symbol: str, stop: threading.Event) -> list[Record]:
        """One call for `symbol`: the bars not emitted before, oldest first."""
        params = {
            "function": "TIME_SERIES_INTRADAY",
            "symbol": symbol,
            "interval": INTERVAL,
            "outputsize": "compact",
            "apikey": self.api_key,
        }
        try:
            body = self.fetcher.get_json(self.url, stop, params=params)
        except RateLimited:
            raise
        except SourceError as exc:
            raise SourceError(f"{symbol}: {exc}") from None
        now = self.clock()
        last = self._emitted.get(symbol)
        records: list[Record] = []
        for start, record in parse_intraday(body, symbol, now):
            if start is None:
                if (symbol, record["event_time"]) not in self._seen_bad:
                    self._seen_bad.add((symbol, record["event_time"]))
                    records.append(record)  # unreadable time: a dead letter with its reason
                continue
            if (last is None or start > last) and start + BAR <= now:
                records.append(record)
                self._emitted[symbol] = start
        return records

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]:
        done = 0
        while not stop.is_set():
            for symbol in self.symbols:
                if not self._wait_turn(stop, urgent=symbol not in self._polled):
                    return
                try:
                    records = self.poll(symbol, stop)
                except Stopped:
                    return
                except RateLimited as exc:
                    self._limited(exc)
                    continue
                except SourceError as exc:
                    self._polled.add(symbol)
                    self._failed(symbol, str(exc))
                    continue
                self._polled.add(symbol)
                self._succeeded(symbol, len(records))
                if records:
                    yield records
            done += 1
            if self.rounds is not None and done >= self.rounds:
                return

    def _wait_turn(self, stop: threading.Event, urgent: bool) -> bool:
        now = self.clock()
        at = self.budget.next_call_at(now, urgent)
        if self._resume_at is not None and self._resume_at > at:
            at = self._resume_at
        self._refresh(now, at)
        wait = (at - now).total_seconds()
        return not stop.wait(wait) if wait > 0 else not stop.is_set()

    def _limited(self, exc: RateLimited) -> None:
        now = self.clock()
        if isinstance(exc, DailyLimitReached):
            self.budget.exhaust(now)
        self._resume_at = now + timedelta(seconds=exc.retry_after or 60.0)
        self.health.state = "paused"
        self.health.message = f"rate limited until {self._resume_at:%H:%M:%S} UTC: {exc}"
        log.warning("alphavantage paused until %s: %s", self._resume_at.isoformat(), exc)
        self._refresh(now, max(self._resume_at, self.budget.next_call_at(now)))

    def _failed(self, symbol: str, reason: str) -> None:
        self._errors[symbol] = reason
        log.warning("alphavantage %s", reason)
        now = self.clock()
        self._refresh(now, self.budget.next_call_at(now))

    def _succeeded(self, symbol: str, count: int) -> None:
        self._errors.pop(symbol, None)
        self._resume_at = None
        self.health.last_success = self.clock()
        if count:
            log.info("alphavantage %s: %d new bars", symbol, count)
        now = self.clock()
        self._refresh(now, self.budget.next_call_at(now))

    def _refresh(self, now: datetime, next_call: datetime) -> None:
        """Keep `health` current: state, message and the budget figures."""
        h = self.health
        h.figures = {**self.budget.figures(now), "next_call_at": next_call.isoformat()}
        if self.budget.remaining_today(now) == 0:
            h.state = "paused"
            h.message = f"daily call budget spent; resumes at {next_call:%Y-%m-%d %H:%M} UTC"
        elif self._resume_at is not None and self._resume_at > now:
            return  # the rate-limit message set in _limited still holds
        elif self._errors and len(self._errors) == len(self.symbols):
            h.state = "down"
            h.message = "; ".join(self._errors.values())
        elif self._errors:
            h.state = "degraded"
            h.message = "; ".join(self._errors.values())
        elif h.last_success is not None:
            h.state = "ok"
            h.message = f"{h.figures['remaining_calls_today']} calls left today"
