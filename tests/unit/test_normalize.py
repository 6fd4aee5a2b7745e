"""Untrusted records become Ticks or a clear reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwatch.errors import InvalidTick
from tickwatch.model import AssetType
from tickwatch.normalize import parse_tick
from tickwatch.records import tick_to_record

NOW = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
GOOD = {
    "source": "test",
    "asset_type": "stock",
    "symbol": "AAPL",
    "event_time": "2024-03-04T09:31:00-05:00",
    "price": "190.5",
    "volume": "",
}


def parse(**changes: object):
    return parse_tick({**GOOD, **changes}, NOW, SKEW)


def test_good_record_with_offset_becomes_utc_tick():
    tick = parse()
    assert tick.event_time == datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    assert tick.ingest_time == NOW
    assert (tick.price, tick.volume, tick.asset_type) == (190.5, None, AssetType.STOCK)


def test_epoch_seconds_and_own_ingest_time():
    tick = parse(event_time=1709562660, ingest_time="2024-03-04T14:32:00Z")
    assert tick.event_time == datetime(2024, 3, 4, 14, 31, tzinfo=UTC)
    assert tick.ingest_time == datetime(2024, 3, 4, 14, 32, tzinfo=UTC)


def test_bar_without_price_takes_its_close_and_round_trips():
    tick = parse(price=None, open=1, high=3, low=0.5, close=2)
    assert tick.price == 2 and tick.is_bar
    assert parse_tick(tick_to_record(tick), NOW, SKEW) == tick


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"symbol": None}, "missing field symbol"),
        ({"price": None}, "missing field price"),
        ({"price": "abc"}, "price is not a number"),
        ({"price": 0}, "price must be positive"),
        ({"price": -3}, "price must be positive"),
        ({"price": float("nan")}, "price is not finite"),
        ({"price": "inf"}, "price is not finite"),
        ({"price": 1e300}, "price must be positive and below"),
        ({"price": True}, "price is a boolean"),
        ({"volume": -1}, "volume must be >= 0"),
        ({"asset_type": "bond"}, "asset_type must be stock or crypto"),
        ({"event_time": "2024-03-04T09:31:00"}, "event_time has no UTC offset"),
        ({"event_time": "yesterday"}, "event_time is not ISO 8601"),
        ({"event_time": "2025-03-04T09:31:00Z"}, "is in the future"),
        ({"event_time": -86400}, "event_time before 1970"),
        ({"event_time": 1e20}, "epoch seconds out of range"),
        ({"event_time": [1]}, "event_time has type list"),
        ({"open": 1, "high": 2, "low": 0.5}, "a bar needs all of open, high, low, close"),
        ({"open": 1, "high": 2, "low": 1.5, "close": 1.8}, "impossible bar"),
        ({"symbol": "A\x00B"}, "symbol is not a printable name"),
        ({"symbol": "X" * 65}, "symbol is not a printable name"),
        ({"source": 5}, "source must be text"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(changes, reason):
    with pytest.raises(InvalidTick) as caught:
        parse(**changes)
    assert reason in caught.value.reason


def test_unicode_symbols_are_accepted():
    assert parse(symbol="比特币").symbol == "比特币"
