"""Untrusted records (JSON, CSV rows, bus messages) to validated Ticks, and back.

The record format is the replay contract: `source, asset_type, symbol, event_time` (ISO 8601
with an offset, or epoch seconds), `price, volume` (volume may be empty) and optional
`open, high, low, close`, `ingest_time`. Anything impossible raises InvalidTick with a reason
short enough to group by; the caller keeps the record as a dead letter.

Time is judged against the clock of the process that receives the record (`now`), never against
a time the record supplies: a record claiming a far-future `event_time` and a matching
`ingest_time` is still in the future. Every reason is free of `now`, so replaying a file twice
keeps one dead letter per bad record.

A file reader that cannot represent a value or a whole record as Python (a Parquet timestamp past
year 9999, a CSV field over the csv module's limit) hands over an `Unreadable` value or an
`UnreadableRecord`; both are rejected here with the reader's reason, so the record becomes a dead
letter instead of stopping the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tickwatch.errors import InvalidTick
from tickwatch.model import EPOCH, AssetType, Rejected, Tick
from tickwatch.records import payload_text

MAX_PRICE = 1e12
MAX_VOLUME = 1e15
MAX_SYMBOL_LENGTH = 64
_BAR_FIELDS = ("open", "high", "low", "close")


class Unreadable(str):
    """A field value a reader could not represent; the text is what the file held.

    A `str` so that the dead letter's payload shows the value as it was.
    """

    reason: str

    def __new__(cls, text: str, reason: str) -> Unreadable:
        value = super().__new__(cls, text)
        value.reason = reason
        return value


class UnreadableRecord(dict[str, Any]):
    """A record a reader could not parse at all: where it was (`fields`) and why (`reason`)."""

    def __init__(self, fields: Mapping[str, Any], reason: str) -> None:
        super().__init__(fields)
        self.reason = reason


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if _blank(value):
        return None
    if isinstance(value, Unreadable):
        raise InvalidTick(f"{name} {value.reason}")
    if isinstance(value, bool):
        raise InvalidTick(f"{name} is a boolean, not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise InvalidTick(f"{name} is not finite: {str(value)[:40]}") from None
    except (TypeError, ValueError):
        raise InvalidTick(f"{name} is not a number: {str(value)[:40]!r}") from None
    if not math.isfinite(number):
        raise InvalidTick(f"{name} is not finite: {number}")
    return number


def _price(record: Mapping[str, Any], name: str) -> float | None:
    number = _number(record, name)
    if number is not None and not 0 < number < MAX_PRICE:
        raise InvalidTick(f"{name} must be positive and below {MAX_PRICE:g}, got {number:g}")
    return number


def parse_time(value: object, name: str = "event_time") -> datetime:
    """An aware UTC datetime from ISO 8601 with offset, epoch seconds, or a datetime.

    A time that Python's datetime cannot hold in UTC (year 1 with a positive offset,
    9999-12-31 with a negative one, a huge negative epoch) is rejected like any other bad value.
    """
    if _blank(value):
        raise InvalidTick(f"missing field {name}")
    if isinstance(value, Unreadable):
        raise InvalidTick(f"{name} {value.reason}")
    try:
        return _utc(value, name)
    except (OverflowError, ValueError):  # beyond datetime's years 1..9999
        raise InvalidTick(f"{name} is out of range: {str(value)[:40]!r}") from None


def _utc(value: object, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > 1e11:
            raise InvalidTick(f"{name} epoch seconds out of range: {value}")
        moment = EPOCH + timedelta(seconds=float(value))
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise InvalidTick(f"{name} is not ISO 8601: {text[:40]!r}") from None
        else:
            if not math.isfinite(seconds) or abs(seconds) > 1e11:
                raise InvalidTick(f"{name} epoch seconds out of range: {text[:40]}")
            moment = EPOCH + timedelta(seconds=seconds)
    else:
        raise InvalidTick(f"{name} has type {type(value).__name__}, expected text or number")
    if moment.tzinfo is None:
        raise InvalidTick(f"{name} has no UTC offset: {value!s:.40}")
    return moment.astimezone(UTC)


def parse_tick(record: Mapping[str, Any], now: datetime, max_skew: timedelta) -> Tick:
    """Validate one record received at `now` (the receiving process's clock).

    `now` is the tick's ingest time unless the record carries its own. Either way an event or
    ingest time more than `max_skew` after `now` is in the future, and an ingest time before
    1970 is impossible: the record's own times are never the yardstick.
    """
    if not isinstance(record, Mapping):
        raise InvalidTick(f"record is {type(record).__name__}, expected an object")
    if isinstance(record, UnreadableRecord):
        raise InvalidTick(record.reason)
    for name in ("source", "asset_type", "symbol"):
        if _blank(record.get(name)):
            raise InvalidTick(f"missing field {name}")
        if not isinstance(record[name], str):
            raise InvalidTick(f"{name} must be text")
    symbol = record["symbol"].strip()
    for name in ("symbol", "source"):  # both are key columns of at most 64 chars in the stores
        text = record[name].strip()
        if len(text) > MAX_SYMBOL_LENGTH or not text.isprintable():
            limit = MAX_SYMBOL_LENGTH
            raise InvalidTick(f"{name} is not a printable name of at most {limit} chars")
    try:
        asset_type = AssetType(record["asset_type"].strip().lower())
    except ValueError:
        raise InvalidTick(
            f"asset_type must be stock or crypto, got {record['asset_type']!r:.40}"
        ) from None

    event_time = parse_time(record.get("event_time"))
    ingest_time = now
    if not _blank(record.get("ingest_time")):
        ingest_time = parse_time(record["ingest_time"], "ingest_time")
    for name, moment in (("event_time", event_time), ("ingest_time", ingest_time)):
        if moment < EPOCH:
            raise InvalidTick(f"{name} before 1970: {moment.isoformat()}")
        if moment - now > max_skew:
            # no `now` in the reason: a reason must be stable so that replaying a file twice
            # keeps one dead letter per record
            raise InvalidTick(
                f"{name} {moment.isoformat()} is in the future "
                f"(more than {max_skew.total_seconds():g}s after the receiving clock)"
            )

    bar = [_price(record, name) for name in _BAR_FIELDS]
    if any(v is not None for v in bar) and any(v is None for v in bar):
        raise InvalidTick("a bar needs all of open, high, low, close")
    price = _price(record, "price")
    if bar[0] is not None:
        open_, high, low, close = bar
        assert open_ is not None and high is not None and low is not None and close is not None
        if not low <= min(open_, close) <= max(open_, close) <= high:
            raise InvalidTick(
                f"impossible bar: low {low} / open {open_} / close {close} / high {high}"
            )
        price = close if price is None else price
    if price is None:
        raise InvalidTick("missing field price")

    volume = _number(record, "volume")
    if volume is not None and not 0 <= volume < MAX_VOLUME:
        raise InvalidTick(f"volume must be >= 0 and below {MAX_VOLUME:g}, got {volume:g}")

    return Tick(
        source=record["source"].strip(),
        asset_type=asset_type,
        symbol=symbol,
        event_time=event_time,
        ingest_time=ingest_time,
        price=price,
        volume=volume,
        open=bar[0],
        high=bar[1],
        low=bar[2],
        close=bar[3],
    )


def reject(record: object, error: InvalidTick, received_at: datetime) -> Rejected:
    source = symbol = None
    if isinstance(record, Mapping):
        source = str(record.get("source"))[:64] if record.get("source") is not None else None
        symbol = str(record.get("symbol"))[:64] if record.get("symbol") is not None else None
    return Rejected("invalid", error.reason, payload_text(record), source, symbol, received_at)
