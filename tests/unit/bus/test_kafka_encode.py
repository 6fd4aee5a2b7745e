"""What the Kafka bus puts on the wire: JSON bytes for every kind of bus value."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest

from tickwatch.bus.kafka import encode
from tickwatch.model import NO_SCORE, AssetType, Feature, Score, Tick, Window


def test_a_tick_travels_as_its_replay_record(make_tick: Callable[..., Tick]) -> None:
    tick = make_tick("14:31:05", 101.25, volume=None, symbol="bitcoin", asset_type=AssetType.CRYPTO)
    assert orjson.loads(encode(tick)) == {
        "source": "test",
        "asset_type": "crypto",
        "symbol": "bitcoin",
        "event_time": "2024-03-04T14:31:05+00:00",
        "ingest_time": "2024-03-04T14:31:05+00:00",
        "price": 101.25,
        "volume": None,
    }


def test_a_window_travels_as_its_table_row() -> None:
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    end = datetime(2024, 3, 4, 14, 35, tzinfo=UTC)
    scores = {Feature.PRICE_RETURN: Score(0.5, 0.25, 2.0), Feature.VOLUME: NO_SCORE}
    window = Window(
        "AAPL", AssetType.STOCK, start, end, 100, 102, 99, 101, 30, 4, 100.7, 1.0, 1.3, scores
    )
    row = orjson.loads(encode(window))
    assert row["window_start"] == "2024-03-04T14:30:00+00:00"
    assert (row["open"], row["close"], row["tick_count"]) == (100, 101, 4)
    assert (row["price_return_pct_mean"], row["price_return_pct_z"]) == (0.5, 2.0)
    assert row["volume_z"] is None and row["volatility_z"] is None


def test_mappings_become_json_and_bytes_stay_as_they_are() -> None:
    assert encode({"symbol": "IBM", "price": 1.5}) == b'{"symbol":"IBM","price":1.5}'
    assert encode(b"\xff not json") == b"\xff not json"


def test_anything_else_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cannot publish set"):
        encode({1, 2})
