"""Shared fixtures. Services (PostgreSQL, Kafka) start once per session here."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from tests.ledger import LEDGER, Ledger
from tests.services import KafkaBroker, Postgres, drop_database, fresh_database
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
    hour, minute, second = [*parts, 0, 0][:3]
    base = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return base.replace(hour=hour, minute=minute, second=second)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for the session (scripts/postgres.sh); its `tickwatch` db."""
    if external := os.environ.get("TICKWATCH_TEST_POSTGRES_URL"):
        yield external
        return
    server = Postgres()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[str]:
    """The URL of an empty database of its own on the session's server, dropped afterwards."""
    url = fresh_database(postgres_url)
    try:
        yield url
    finally:
        drop_database(postgres_url, url)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A single-node KRaft broker for the session (scripts/kafka.sh): 'host:port'.

    Topics are not auto-created; give each test its own topic names (e.g. a prefix) and create
    them (KafkaBus does on start)."""
    if external := os.environ.get("TICKWATCH_TEST_KAFKA"):
        yield external
        return
    broker = KafkaBroker()
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def ledger() -> Iterator[Ledger]:
    """Where fault and bad-input tests record their outcome (docs/RELIABILITY.md)."""
    yield LEDGER
    LEDGER.write()
