"""A venue's trade stream as a tickwatch Source: trades in, one tick per trade out.

The `FeedReader` (client.py) fills a bounded inbox on its own thread; `TradeStream.batches`
drains it, asks the `Venue` to parse each frame, and turns every new trade into a record:
its price, its size as `volume` (the units traded by that trade, so a window's volume is the
real interval volume), the venue as `source`, the venue's market name as `market` and its
trade id as `trade_id`.

- **Duplicates**: a trade whose key was already emitted is skipped and counted: the venue
  repeats itself after a resubscribe, and live and backfilled trades overlap. The key is the
  trade id; for venues without ids it is the time (to the microsecond, 1 µs either way),
  price and size, counted with multiplicity, since two real fills can share all three.
- **Gaps**: where the venue numbers trades contiguously per market (Coinbase, Binance), a trade
  or heartbeat whose id jumps past the next one opens a gap; after a reconnect every market
  may have one. The gap is backfilled from the venue's REST trades endpoint; what the REST
  answer does not cover is a data-quality event: a dead letter naming the market and the
  missing count. Venues without ids (Kraken v1) are backfilled by time after a reconnect;
  venues without a trades endpoint (Finnhub) record the outage as a data-quality event.
- **Equal timestamps**: the engine counts ticks of one source, symbol and event time once,
  but one taker order often fills several trades in the same microsecond. Such a trade is
  placed 1 µs after the previous one (in arrival order, which is id order), so each trade
  stays one observation and its volume counts; the shift is far below any window's size.
- **Overflow**: frames the reader had to drop (inbox full) become dead letters with their
  reason; the trade-id gap they leave is then backfilled like any other.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from tickwatch.config import Settings
from tickwatch.errors import SourceError
from tickwatch.model import AssetType
from tickwatch.normalize import UnreadableRecord
from tickwatch.sources import Record, SourceHealth
from tickwatch.sources.fetch import Fetcher, Stopped
from tickwatch.sources.streams.client import FeedReader, Frame, Inbox, Reconnected
from tickwatch.sources.streams.status import status_path, write_status

log = logging.getLogger(__name__)

BATCH = 5000  # frames taken from the inbox at a time
SEEN_KEYS = 200_000  # trade keys remembered per market for deduplication
KEPT_CHARS = 10_000  # of a frame kept in its dead letter (a frame may be megabytes)
STATUS_EVERY = 1.0  # seconds between rewrites of the status file (status.py)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Trade:
    """One venue trade. `symbol` is canonical (symbols.py), `market` the venue's name."""

    symbol: str
    market: str
    time: datetime
    price: float
    size: float
    trade_id: int | None = None
    key: Hashable = None  # dedup key: the trade id, or (micros, price, size); None: no dedup

    def match_keys(self) -> tuple[Hashable, ...]:
        """Keys that mean "this trade": a time-keyed trade also matches 1 µs either side,
        because a venue's REST floats and WebSocket text round the same time differently."""
        if isinstance(self.key, tuple) and self.key and isinstance(self.key[0], int):
            micros, *rest = self.key
            return (self.key, (micros - 1, *rest), (micros + 1, *rest))
        return () if self.key is None else (self.key,)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The venue says the newest trade of `market` is `last_trade_id` (gaps without trades)."""

    market: str
    last_trade_id: int


@dataclass(frozen=True, slots=True)
class VenueError:
    """The venue refused something (a subscription, a message); `message` is its words."""

    message: str


Event = Trade | Heartbeat | VenueError


class Venue(Protocol):
    """What differs between venues: where, what to send, how to read, how to backfill.

    `parse` raises ValueError, KeyError, TypeError or IndexError on a message it cannot read
    (the frame becomes a dead letter). `backfill` returns the trades of `market` after `after`
    (and before id `before` when given) that its REST endpoint still has; it raises
    SourceError when the endpoint fails and NotImplementedError when the venue has none.
    """

    name: str
    asset_type: AssetType
    url: str
    label: str  # the url without secrets, for logs and health
    idle_timeout: float | None  # seconds of silence that mean a dead feed (None: pings judge)
    numbered: bool  # trade ids are contiguous per market, so a jump is a gap

    def subscribe(self) -> list[str]: ...

    def parse(self, text: str) -> list[Event]: ...

    def backfill(
        self, fetcher: Fetcher, market: str, after: Trade, before: int | None, stop: threading.Event
    ) -> list[Trade]: ...


def _possible(trade: Trade) -> bool:
    return (
        math.isfinite(trade.price)
        and trade.price > 0
        and math.isfinite(trade.size)
        and (trade.size >= 0)
    )


class _Seen:
    """Keys of the trades of one market already emitted, with multiplicity (the last
    `SEEN_KEYS`): two real trades can share a time-key (Kraken: same microsecond, price and
    volume), so a key is a count, not a flag.

    `credit` counts backfilled time-keyed trades whose live copy may still arrive: a live
    trade matching one is that copy. Trades with ids need no credit: an id seen is a repeat.
    """

    def __init__(self) -> None:
        self.count: Counter[Hashable] = Counter()
        self.credit: Counter[Hashable] = Counter()
        self.order: deque[Hashable] = deque()

    def times(self, trade: Trade) -> int:
        return sum(self.count.get(key, 0) for key in trade.match_keys())

    def repeats(self, trade: Trade) -> bool:
        """Is live `trade` one already emitted? (consumes the credit it matches)"""
        if trade.trade_id is not None:
            return self.times(trade) > 0
        for key in trade.match_keys():
            if self.credit.get(key, 0) > 0:
                self.credit[key] -= 1
                return True
        return False

    def add(self, trade: Trade, backfilled: bool) -> None:
        key = trade.key
        self.count[key] += 1
        if backfilled and trade.trade_id is None:
            self.credit[key] += 1
        self.order.append(key)
        if len(self.order) > SEEN_KEYS:
            old = self.order.popleft()
            self.count[old] -= 1
            if self.count[old] <= 0:
                del self.count[old]
                self.credit.pop(old, None)


class TradeStream:
    """A Source reading one venue. `duration` seconds end it (None: until stopped)."""

    def __init__(
        self,
        venue: Venue,
        settings: Settings,
        client: httpx.Client | None = None,
        duration: float | None = None,
    ) -> None:
        self.venue = venue
        self.name = venue.name
        self.duration = duration
        self.inbox = Inbox(settings.stream_queue_size)
        self.reader = FeedReader(
            venue.url,
            venue.subscribe,
            self.inbox,
            label=venue.label,
            idle_timeout=venue.idle_timeout,
            backoff_max=settings.stream_backoff_max,
        )
        http = client or httpx.Client(timeout=settings.request_timeout)
        self.fetcher = Fetcher(http, lambda: datetime.now(UTC), initial_backoff=0.5, max_backoff=5)
        self.health = SourceHealth(state="starting", message=f"connecting to {venue.label}")
        self.counts = {
            "trades": 0,
            "duplicates": 0,
            "gaps": 0,
            "backfilled": 0,
            "unfilled": 0,
            "unreadable": 0,
            "venue_errors": 0,
        }
        self._seen: dict[str, _Seen] = {}
        self._newest: dict[str, Trade] = {}  # per market: highest id, or latest time
        self._placed: dict[str, tuple[datetime, datetime]] = {}  # symbol: (venue, event) time
        self._dropped_seen = 0
        self._refused = ""  # the venue's last error message, shown until the stream ends
        self.status_file = status_path(settings.data_dir, venue.name)
        self._status_written = 0.0

    # -- the Source protocol ----------------------------------------------------------------

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]:
        self.reader.start()
        end = None if self.duration is None else time.monotonic() + self.duration
        try:
            while not stop.is_set() and (end is None or time.monotonic() < end):
                records = self._handle(self.inbox.take(BATCH, 0.2), stop)
                self._report()
                if records:
                    yield records
        finally:
            self.reader.close()
        # what arrived before the reader closed still counts (nothing read is lost)
        records = self._handle(self.inbox.take(len(self.inbox) + 1, 0.0), stop)
        self._report(final=True)
        if records:
            yield records

    def _handle(self, items: Sequence[Frame | Reconnected], stop: threading.Event) -> list[Record]:
        records: list[Record] = []
        for item in items:
            if isinstance(item, Reconnected):
                records.extend(self._after_outage(item, stop))
            else:
                records.extend(self._on_frame(item, stop))
        records.extend(self._dropped())
        return records

    # -- frames -----------------------------------------------------------------------------

    def _on_frame(self, frame: Frame, stop: threading.Event) -> list[Record]:
        try:
            events = self.venue.parse(frame.text)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            self.counts["unreadable"] += 1
            reason = f"unreadable {self.name} message: {type(exc).__name__}: {exc}"[:200]
            return [self._dead_letter(reason, message=frame.text[:KEPT_CHARS])]
        records: list[Record] = []
        for event in events:
            if isinstance(event, Trade) and not _possible(event):
                # refused before its id is remembered: a valid copy may still come
                self.counts["unreadable"] += 1
                reason = f"impossible {self.name} trade: price {event.price}, size {event.size}"
                records.append(self._dead_letter(reason, message=frame.text[:KEPT_CHARS]))
            elif isinstance(event, Trade):
                records.extend(self._on_trade(event, frame.received, stop))
            elif isinstance(event, Heartbeat):
                newest = self._newest.get(event.market)
                if (
                    self.venue.numbered
                    and newest is not None
                    and newest.trade_id is not None
                    and event.last_trade_id > newest.trade_id
                ):
                    records.extend(self._fill(newest, event.last_trade_id + 1, stop))
            else:
                self.counts["venue_errors"] += 1
                self._refused = f"{self.name} says: {event.message}"[:300]
                log.warning("%s refused: %s", self.venue.label, event.message)
                records.append(self._dead_letter(f"{self.name} error: {event.message}"[:200]))
        return records

    def _on_trade(self, trade: Trade, received: float, stop: threading.Event) -> list[Record]:
        if trade.key is not None and self._seen_of(trade).repeats(trade):
            self.counts["duplicates"] += 1
            return []
        records: list[Record] = []
        newest = self._newest.get(trade.market)
        if (
            self.venue.numbered
            and newest is not None
            and trade.trade_id is not None
            and newest.trade_id is not None
            and trade.trade_id > newest.trade_id + 1
        ):
            records.extend(self._fill(newest, trade.trade_id, stop))
        self._remember(trade, backfilled=False)
        records.append(self._record(trade, received))
        return records

    def _seen_of(self, trade: Trade) -> _Seen:
        return self._seen.setdefault(trade.market, _Seen())

    def _remember(self, trade: Trade, backfilled: bool) -> None:
        if trade.key is not None:
            self._seen_of(trade).add(trade, backfilled)
        newest = self._newest.get(trade.market)
        if newest is None or (
            (trade.trade_id, trade.time) > (newest.trade_id, newest.time)
            if trade.trade_id is not None and newest.trade_id is not None
            else trade.time > newest.time
        ):
            self._newest[trade.market] = trade

    # -- gaps -------------------------------------------------------------------------------

    def _after_outage(self, outage: Reconnected, stop: threading.Event) -> list[Record]:
        """Backfill every market from its newest trade; say what cannot be."""
        lost = datetime.fromtimestamp(outage.lost, UTC)
        back = datetime.fromtimestamp(outage.back, UTC)
        log.info("%s: feed down %s to %s; backfilling", self.name, lost, back)
        if not self._newest:
            return []
        records: list[Record] = []
        for newest in list(self._newest.values()):
            records.extend(self._fill(newest, None, stop, outage=(lost, back)))
        return records

    def _fill(
        self,
        after: Trade,
        before: int | None,
        stop: threading.Event,
        outage: tuple[datetime, datetime] | None = None,
    ) -> list[Record]:
        """Trades of `after.market` after `after` (and before id `before`) from REST."""
        self.counts["gaps"] += 1
        why = ""
        try:
            got = self.venue.backfill(self.fetcher, after.market, after, before, stop)
        except NotImplementedError:
            got, why = [], f"{self.name} has no trade history endpoint"
        except (SourceError, Stopped) as exc:
            got, why = [], f"backfill failed: {exc}"[:200]
        fresh = self._new_ones(
            sorted(
                (t for t in got if self._inside(t, after, before)),
                key=lambda t: (t.trade_id or 0, t.time),
            )
        )
        now = time.time()
        records: list[Record] = []
        for trade in fresh:
            self._remember(trade, backfilled=True)
            records.append(self._record(trade, now))
        self.counts["backfilled"] += len(fresh)
        missing = self._missing(after, before) if self.venue.numbered else None
        if why or missing:
            span = f"ids {after.trade_id}..{before}" if before is not None else "outage"
            if outage is not None:
                span = f"{outage[0].isoformat()} to {outage[1].isoformat()}"
            count = f"{missing} trades" if missing else "trades"
            self.counts["unfilled"] += missing or 1
            reason = f"gap not backfilled: {count} of {after.market} missing ({span}); {why}"
            log.warning("%s: %s", self.name, reason)
            records.append(
                self._dead_letter(
                    reason.rstrip("; ")[:300], symbol=after.symbol, market=after.market
                )
            )
        elif fresh:
            log.info("%s: backfilled %d trades of %s", self.name, len(fresh), after.market)
        return records

    def _new_ones(self, trades: list[Trade]) -> list[Trade]:
        """The backfilled trades not yet emitted: the n-th REST trade of a key is new when
        fewer than n+1 of that key were emitted before."""
        emitted: dict[Hashable, int] = {}
        nth: Counter[Hashable] = Counter()
        fresh: list[Trade] = []
        for trade in trades:
            if trade.key is None:
                fresh.append(trade)
                continue
            if trade.key not in emitted:
                emitted[trade.key] = self._seen_of(trade).times(trade)
            if nth[trade.key] >= emitted[trade.key]:
                fresh.append(trade)
            nth[trade.key] += 1
        return fresh

    @staticmethod
    def _inside(trade: Trade, after: Trade, before: int | None) -> bool:
        if trade.market != after.market:
            return False
        if trade.trade_id is not None and after.trade_id is not None:
            return trade.trade_id > after.trade_id and (before is None or trade.trade_id < before)
        return trade.time >= after.time

    def _missing(self, after: Trade, before: int | None) -> int:
        """Ids between `after` and `before` (or the newest id now known) never seen."""
        if after.trade_id is None:
            return 0
        newest = self._newest[after.market].trade_id or after.trade_id
        upper = before if before is not None else newest + 1
        keys = self._seen.get(after.market, _Seen()).count
        have = sum(1 for k in keys if isinstance(k, int) and after.trade_id < k < upper)
        return max(0, upper - after.trade_id - 1 - have)

    # -- output -----------------------------------------------------------------------------

    def _record(self, trade: Trade, received: float) -> dict[str, Any]:
        self.counts["trades"] += 1
        return {
            "source": self.name,
            "asset_type": self.venue.asset_type.value,
            "symbol": trade.symbol,
            # datetimes, not text: validation skips parsing them, and JSON writers (orjson:
            # produce --out, the Kafka bus) write them as ISO 8601 all the same
            "event_time": self._place(trade.symbol, trade.time),
            "ingest_time": datetime.fromtimestamp(received, UTC),
            "price": trade.price,
            "volume": trade.size,
            "market": trade.market,
            "trade_id": trade.trade_id,
        }

    def _place(self, symbol: str, moment: datetime) -> datetime:
        """The trade's event time, 1 µs after the previous one when it would repeat it."""
        placed = self._placed.get(symbol)
        event = moment
        if placed is not None and placed[0] <= moment <= placed[1]:
            event = placed[1] + _MICRO
        self._placed[symbol] = (moment, event)
        return event

    def _dead_letter(self, reason: str, **fields: Any) -> UnreadableRecord:
        """A record the processor keeps as a dead letter with `reason`. The reason is also a
        field: over Kafka only the fields travel, and the dead letter's payload keeps them."""
        record = {
            "source": self.name,
            "asset_type": self.venue.asset_type.value,
            "problem": reason,
            **fields,
        }
        return UnreadableRecord(record, reason)

    def _dropped(self) -> list[Record]:
        stats = self.reader.stats
        records: list[Record] = []
        while self.reader.dropped:
            frame = self.reader.dropped.popleft()
            self._dropped_seen += 1
            records.append(
                self._dead_letter(
                    "stream queue full: message dropped (consumer too slow); "
                    "STREAM_QUEUE_SIZE bounds it",
                    message=frame.text[:KEPT_CHARS],
                    received=datetime.fromtimestamp(frame.received, UTC).isoformat(),
                )
            )
        unkept = stats.drops - self._dropped_seen
        if unkept > 0:
            self._dropped_seen = stats.drops
            records.append(
                self._dead_letter(
                    f"stream queue full: {unkept} more messages dropped, not kept",
                    at=datetime.now(UTC).isoformat(),
                )
            )
        return records

    def _report(self, final: bool = False) -> None:
        stats = self.reader.stats
        age = None if stats.last_message is None else round(time.time() - stats.last_message, 1)
        self.health.figures.update(
            self.counts,
            connected=stats.connected,
            last_message_age_s=age,
            reconnects=stats.reconnects,
            drops=stats.drops,
            queued=len(self.inbox),
            feed=self.venue.label,
        )
        if stats.last_message is not None:
            self.health.last_success = datetime.fromtimestamp(stats.last_message, UTC)
        if final:
            state, message = "ok", f"stopped after {self.counts['trades']} trades"
        elif stats.connected:
            state, message = "ok", f"streaming from {self.venue.label}"
        elif stats.connections:
            state = "degraded"
            message = f"disconnected: {stats.last_error or 'closed'}; reconnecting"
        elif stats.last_error:
            state = "down"
            message = f"cannot connect to {self.venue.label}: {stats.last_error}"
        else:
            state, message = self.health.state, self.health.message
        if self._refused:  # a refusal lasts: a venue does not take it back by itself
            state = "degraded" if state == "ok" else state
            message = f"{self._refused} ({message})"
        self.health.state, self.health.message = state, message
        if final or time.monotonic() - self._status_written >= STATUS_EVERY:
            self._status_written = time.monotonic()
            try:
                write_status(self.status_file, self.health.state, self.health.figures)
            except OSError as exc:
                log.warning("cannot write %s: %s", self.status_file, exc)
