"""Times at the edges of what a record may say (issue 14, classes 1 and 5), at the validator.

Every case names the time a hostile file held; the expected reasons are written out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwatch.errors import InvalidTick
from tickwatch.model import AssetType, Tick
from tickwatch.normalize import Unreadable, UnreadableRecord, parse_tick, parse_time
from tickwatch.records import asset_conflict, tick_payload

NOW = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)
GOOD = {
    "source": "test",
    "asset_type": "stock",
    "symbol": "AAPL",
    "event_time": "2024-03-04T14:31:00Z",
    "price": 190.5,
}


def reason(**changes: object) -> str:
    with pytest.raises(InvalidTick) as caught:
        parse_tick({**GOOD, **changes}, NOW, SKEW)
    return caught.value.reason


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",  # 31 Dec of year 0 in UTC
        "9999-12-31T23:59:59-01:00",  # 1 Jan of year 10000 in UTC
        -99_999_999_999,  # 1e11 s before 1970: before year 1
        -99_999_999_999.5,
        10**400,  # an integer no float holds
    ],
)
def test_times_python_cannot_hold_in_utc_are_invalid_not_crashes(value: object):
    with pytest.raises(InvalidTick) as caught:
        parse_time(value)
    assert caught.value.reason.startswith("event_time is out of range")


def test_far_future_event_with_a_matching_ingest_time_is_in_the_future():
    future = "2200-01-01T00:00:00+00:00"
    assert reason(event_time=future, ingest_time=future) == (
        "event_time 2200-01-01T00:00:00+00:00 is in the future "
        "(more than 300s after the receiving clock)"
    )


def test_ingest_time_is_bounded_by_the_receiving_clock_too():
    assert reason(ingest_time="9999-12-31T23:59:59Z") == (
        "ingest_time 9999-12-31T23:59:59+00:00 is in the future "
        "(more than 300s after the receiving clock)"
    )
    assert reason(ingest_time="1969-12-31T23:59:59Z") == (
        "ingest_time before 1970: 1969-12-31T23:59:59+00:00"
    )


def test_skew_is_measured_from_now_not_from_the_record():
    at_limit = (NOW + SKEW).isoformat()
    tick = parse_tick(
        {**GOOD, "event_time": at_limit, "ingest_time": "2024-03-04T14:00Z"}, NOW, SKEW
    )
    assert tick.event_time == NOW + SKEW
    assert tick.ingest_time == datetime(2024, 3, 4, 14, 0, tzinfo=UTC)  # the record's own
    assert "in the future" in reason(
        event_time=(NOW + SKEW + timedelta(microseconds=1)).isoformat()
    )


def test_unreadable_values_and_records_carry_the_readers_reason():
    value = Unreadable("10000-01-01T00:00:00Z", "is out of range (years 1 to 9999)")
    assert reason(event_time=value) == "event_time is out of range (years 1 to 9999)"
    assert reason(price=value) == "price is out of range (years 1 to 9999)"
    record = UnreadableRecord({"file": "t.csv", "line": 3}, "CSV line unreadable: too long")
    with pytest.raises(InvalidTick) as caught:
        parse_tick(record, NOW, SKEW)
    assert caught.value.reason == "CSV line unreadable: too long"


def test_a_ticks_dead_letter_payload_has_no_ingest_time():
    tick = Tick("av", AssetType.CRYPTO, "ETH", NOW, NOW + timedelta(seconds=3), 2.5, None)
    assert tick_payload(tick) == (
        '{"source":"av","asset_type":"crypto","symbol":"ETH",'
        '"event_time":"2024-03-04T15:00:00+00:00","price":2.5,"volume":null}'
    )
    letter = asset_conflict(tick, AssetType.STOCK)
    assert (letter.kind, letter.payload, letter.received_at) == ("invalid", tick_payload(tick),
                                                                 tick.ingest_time)  # fmt: skip
    assert letter.reason == (
        "asset_type conflict: 'ETH' is a stock series; a crypto tick of that name would merge "
        "into it (rename one of them)"
    )


def test_a_source_name_fits_the_stores_key_columns():
    """A late tick's dead letter keeps its source in a 64-character column (VARCHAR(64) on
    PostgreSQL, which refuses a longer value)."""
    assert reason(source="s" * 65) == "source is not a printable name of at most 64 chars"
    assert reason(source="a\x00b") == "source is not a printable name of at most 64 chars"
    assert parse_tick({**GOOD, "source": " " + "s" * 64 + " "}, NOW, SKEW).source == "s" * 64
