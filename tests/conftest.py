"""Shared fixtures. Services (PostgreSQL, Kafka) start once per session here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from tickwatch.model import AssetType, Tick


@pytest.fixture
def make_tick() -> Callable[..., Tick]:
    """A tick with sensible defaults; times as 'HH:MM[:SS]' on 2024-03-04 UTC or datetimes."""

    def build(
        at: str | datetime,
        price: float,
        volume: float | None = 1.0,
        symbol: str = "AAPL",
        source: str = "test",
        asset_type: AssetType = AssetType.STOCK,
        **bar: float,
    ) -> Tick:
        moment = at if isinstance(at, datetime) else at_time(at)
        return Tick(source, asset_type, symbol, moment, moment, price, volume, **bar)

    return build


def at_time(text: str, day: str = "2024-03-04") -> datetime:
    parts = [int(p) for p in text.split(":")]
    hour, minute, second = (parts + [0, 0])[:3]
    base = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return base.replace(hour=hour, minute=minute, second=second)
