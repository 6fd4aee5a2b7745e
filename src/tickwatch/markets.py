"""Exchange sessions: where a moment falls in a trading day, from a real exchange calendar.

US stocks trade in the regular session of the New York Stock Exchange (`XNYS` in
`exchange_calendars`, which knows holidays, half days and daylight saving time). Crypto trades
around the clock and has no session. A 5-minute window of a stock is placed by `position`:

- in the regular session, its *slot* counts windows from the open (0 is the opening auction's
  window), except in the last 30 minutes, where it counts windows back from the close
  (`CLOSE_SLOTS + k`, k = 0 for the window that ends at the close). So the closing auction of a
  half day (13:00) shares its slot with an ordinary day's 16:00 close;
- before the open and after the close of a trading day (extended hours) the slot is
  `PRE_SLOTS + k` / `POST_SLOTS + k`, k counted in windows from the open / since the close;
- on a day without a session (weekend, holiday) it is `CLOSED_SLOT`.

After the calendar's last known day (about a year ahead) sessions are assumed Monday to
Friday, 09:30 to 16:00 New York time, so a long-running process never stops placing windows.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from tickwatch.model import AssetType

NEW_YORK = ZoneInfo("America/New_York")
EXCHANGE = "XNYS"
CALENDAR_START = "2000-01-01"

CLOSE_SLOTS = 1000
PRE_SLOTS = 2000
POST_SLOTS = 3000
CLOSED_SLOT = 4000
_CLOSING_MINUTES = 30


@dataclass(frozen=True, slots=True)
class SessionPosition:
    """Where a window starts relative to its trading day (see the module docstring)."""

    day: date  # the New York calendar day of the window
    slot: int
    regular: bool  # inside the regular session
    minutes_from_open: float | None  # None on a day without a session
    minutes_to_close: float | None


class SessionCalendar:
    """Regular sessions as sorted epoch-second arrays; `exchange_calendars` is loaded once,
    on first use (it takes about a second and imports pandas)."""

    def __init__(self, exchange: str = EXCHANGE) -> None:
        self.exchange = exchange
        self._lock = threading.Lock()
        self._opens: np.ndarray | None = None
        self._closes: np.ndarray | None = None
        self._last_day: date | None = None
        self._positions: dict[tuple[float, int], SessionPosition] = {}  # every symbol asks alike

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._opens is not None and self._closes is not None:
            return self._opens, self._closes
        with self._lock:
            if self._opens is None or self._closes is None:
                self._opens, self._closes, self._last_day = _sessions(self.exchange)
            return self._opens, self._closes

    def session_of(self, day: date) -> tuple[int, int] | None:
        """(open, close) in epoch seconds of the session on New York day `day`, or None."""
        opens, closes = self._load()
        assert self._last_day is not None
        if day > self._last_day:
            return _assumed_session(day)
        midnight = int(datetime(day.year, day.month, day.day, tzinfo=NEW_YORK).timestamp())
        i = int(np.searchsorted(opens, midnight))
        if i < len(opens) and opens[i] < midnight + 86_400:
            return int(opens[i]), int(closes[i])
        return None

    def position(self, moment: datetime, window_minutes: int = 5) -> SessionPosition:
        key = (moment.timestamp(), window_minutes)
        known = self._positions.get(key)
        if known is None:
            if len(self._positions) > 100_000:
                self._positions.clear()
            known = self._positions[key] = self._position(moment, window_minutes)
        return known

    def _position(self, moment: datetime, window_minutes: int) -> SessionPosition:
        day = moment.astimezone(NEW_YORK).date()
        session = self.session_of(day)
        if session is None:
            return SessionPosition(day, CLOSED_SLOT, False, None, None)
        opened, closes = session
        t = moment.timestamp()
        from_open = (t - opened) / 60
        to_close = (closes - t) / 60
        step = window_minutes
        if from_open < 0:
            slot = PRE_SLOTS + int(-from_open // step)
        elif to_close <= 0:
            slot = POST_SLOTS + int(-to_close // step)
        elif to_close <= _CLOSING_MINUTES:
            slot = CLOSE_SLOTS + int((to_close - 1e-9) // step)
        else:
            slot = int(from_open // step)
        regular = from_open >= 0 and to_close > 0
        return SessionPosition(day, slot, regular, from_open, to_close)

    def close_of(self, moment: datetime) -> datetime | None:
        """The close of the regular session on `moment`'s New York day; None when that day
        has no session or `moment` is after its close (extended hours)."""
        session = self.session_of(moment.astimezone(NEW_YORK).date())
        if session is None or moment.timestamp() > session[1]:
            return None
        return datetime.fromtimestamp(session[1], UTC)

    def is_open(self, moment: datetime) -> bool:
        """Whether the regular session is trading at `moment`."""
        return self.position(moment).regular


def _sessions(exchange: str) -> tuple[np.ndarray, np.ndarray, date]:
    """Session opens and closes (epoch seconds) and the last day the calendar knows.

    Building them means importing pandas and `exchange_calendars` (a second or two), so they
    are kept in the user's cache folder per library version and exchange, rebuilt after a week
    (the library's calendars reach about a year ahead). A missing or unreadable cache is
    simply rebuilt."""
    from importlib.metadata import version

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tickwatch"
    cached = folder / f"{exchange}-{version('exchange_calendars')}-{CALENDAR_START}.npz"
    try:
        if time.time() - cached.stat().st_mtime < 7 * 86_400:
            with np.load(cached) as data:
                last = date.fromordinal(int(data["last_day"]))
                return data["opens"], data["closes"], last
    except (OSError, ValueError, KeyError):
        pass
    import exchange_calendars

    schedule = exchange_calendars.get_calendar(exchange, start=CALENDAR_START).schedule
    opens, closes = _epoch_seconds(schedule["open"]), _epoch_seconds(schedule["close"])
    last_day = schedule.index[-1].date()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, opens=opens, closes=closes, last_day=last_day.toordinal())
        partial.replace(cached)
    except OSError:
        pass  # a read-only home: build it every time
    return opens, closes, last_day


def _epoch_seconds(column: object) -> np.ndarray:
    values = np.asarray(column.values.astype("datetime64[s]").astype(np.int64))  # type: ignore[attr-defined]
    return values


def _assumed_session(day: date) -> tuple[int, int] | None:
    if day.weekday() >= 5:
        return None
    opened = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NEW_YORK)
    return int(opened.timestamp()), int((opened + timedelta(hours=6, minutes=30)).timestamp())


_CALENDAR = SessionCalendar()


def calendar_for(asset_type: AssetType) -> SessionCalendar | None:
    """The session calendar of an asset class; None for crypto (it never closes)."""
    return _CALENDAR if asset_type is AssetType.STOCK else None


def market_open(moment: datetime, asset_type: AssetType = AssetType.STOCK) -> bool:
    """Whether `asset_type` trades at `moment` (crypto always does)."""
    calendar = calendar_for(asset_type)
    return True if calendar is None else calendar.is_open(moment.astimezone(UTC))
