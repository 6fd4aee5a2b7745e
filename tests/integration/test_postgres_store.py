"""The SQL store on a real PostgreSQL (scripts/postgres.sh), and storage/init.sql against it."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import tickwatch
from tests.unit.store.test_sql import T0, anomaly, window
from tickwatch.model import Feature, Rejected, Score
from tickwatch.store.sql import (
    SqlStore,
    clean_market_data,
    dead_letters,
    market_anomalies,
    metadata,
)

pytestmark = pytest.mark.postgres

INIT_SQL = Path(__file__).resolve().parents[2] / "storage" / "init.sql"


@pytest.fixture
def store(postgres_db: str) -> Any:
    s = SqlStore(postgres_db)
    yield s
    s.close()


def test_timestamps_are_timestamptz_and_come_back_aware_utc(store: SqlStore) -> None:
    store.write([window(0)], [anomaly(0, T0 + timedelta(minutes=5, seconds=1))])
    with store.engine.connect() as conn:
        kind = conn.execute(
            sa.text(
                "select data_type from information_schema.columns "
                "where table_name = 'clean_market_data' and column_name = 'window_start'"
            )
        ).scalar_one()
        conn.execute(sa.text("set time zone 'America/New_York'"))
        start = conn.execute(sa.select(clean_market_data.c.window_start)).scalar_one()
    assert kind == "timestamp with time zone"
    assert start == T0 and start.tzinfo == UTC


def test_upserts_never_duplicate_and_keep_first_detection(store: SqlStore) -> None:
    first = T0 + timedelta(minutes=6)
    store.write([window(0), window(1)], [anomaly(0, first)])
    store.write([window(0, close=105.0)], [anomaly(0, first + timedelta(hours=1))])
    store.write([window(0, close=105.0), window(1)], [anomaly(0, first + timedelta(hours=2))])
    assert store.count(clean_market_data) == 2
    assert store.count(market_anomalies) == 1
    restored = {w.window_start: w for w in store.recent_windows(20)}
    assert restored[T0].close == 105.0
    with store.engine.connect() as conn:
        detected = conn.execute(market_anomalies.select()).one().detected_at
    assert detected == first


def test_a_window_round_trips_with_its_nulls(store: SqlStore) -> None:
    original = replace(window(3), volume=None, vwap=None, volatility=None)
    store.write([original], [])
    (restored,) = store.recent_windows(20)
    assert restored.as_row() == original.as_row()
    assert restored.scores[Feature.PRICE_RETURN] == Score(0.1, 0.2, 4.5)


def test_dead_letters_are_kept_once_per_payload_and_reason(store: SqlStore) -> None:
    bad = Rejected("invalid", "price is not finite: nan", '{"price": NaN}', "x", "AAPL", T0)
    store.write([], [], [bad, bad, replace(bad, reason="other")])
    store.write([], [], [bad])
    assert store.count(dead_letters) == 2


def test_recent_windows_gives_the_last_n_per_symbol_oldest_first(store: SqlStore) -> None:
    store.write([window(i) for i in range(30)] + [window(i, "MSFT") for i in range(3)], [])
    recent = store.recent_windows(20)
    aapl = [w.window_start for w in recent if w.symbol == "AAPL"]
    assert aapl == [T0 + timedelta(minutes=5 * i) for i in range(10, 30)]
    assert len([w for w in recent if w.symbol == "MSFT"]) == 3
    assert store.latest_window_end() == T0 + timedelta(minutes=5 * 30)


def test_a_plain_postgresql_url_uses_psycopg_3(postgres_db: str) -> None:
    plain = postgres_db.replace("postgresql+psycopg://", "postgresql://")
    store = SqlStore(plain)
    try:
        assert store.engine.dialect.driver == "psycopg"
        store.write([window(0)], [])
        assert store.count(clean_market_data) == 1
    finally:
        store.close()


def _schema(url: str) -> dict[str, Any]:
    """Columns (type, nullability), primary keys and indexes of the public schema's tables
    (Alembic's alembic_version left out: init.sql does not make it)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        columns = conn.execute(
            sa.text(
                "select table_name, column_name, data_type, character_maximum_length, "
                "is_nullable from information_schema.columns where table_schema = 'public' "
                "order by table_name, column_name"
            )
        ).all()
        indexes = conn.execute(
            sa.text(
                "select tablename, indexname, indexdef from pg_indexes "
                "where schemaname = 'public' order by indexname"
            )
        ).all()
        keys = conn.execute(
            sa.text(
                "select tc.table_name, kcu.column_name, kcu.ordinal_position "
                "from information_schema.table_constraints tc join "
                "information_schema.key_column_usage kcu using (constraint_name, table_name) "
                "where tc.constraint_type = 'PRIMARY KEY' and tc.table_schema = 'public' "
                "order by 1, 3"
            )
        ).all()
    engine.dispose()
    # primary key index names differ by naming convention only; compare their columns
    return {
        "columns": [tuple(c) for c in columns if c[0] != "alembic_version"],
        "keys": [tuple(k) for k in keys if k[0] != "alembic_version"],
        "indexes": sorted(
            (t, d.split(" USING ")[1]) if n.endswith("_pkey") else (t, n, d.split(" USING ")[1])
            for t, n, d in indexes
            if t != "alembic_version"
        ),
    }


def test_init_sql_is_fresh() -> None:
    """storage/init.sql is generated (python -m tickwatch.store.ddl): it fails when stale."""
    from tickwatch.store import ddl

    assert INIT_SQL.read_text() == ddl.render(), "stale: run python -m tickwatch.store.ddl"


def test_init_sql_builds_exactly_the_schema_of_the_package(
    postgres_db: str, postgres_url: str
) -> None:
    from tests.services import drop_database, fresh_database

    # modules add their tables to the store's metadata (e.g. alerts): import them all first
    for module in pkgutil.walk_packages(tickwatch.__path__, "tickwatch."):
        importlib.import_module(module.name)
    by_package = fresh_database(postgres_url)
    try:
        SqlStore(by_package).close()
        engine = sa.create_engine(postgres_db)
        with engine.begin() as conn:
            conn.exec_driver_sql(INIT_SQL.read_text())
            conn.exec_driver_sql(INIT_SQL.read_text())  # idempotent, like docker's init hook
        engine.dispose()
        expected = _schema(by_package)
        assert {c[0] for c in expected["columns"]} == set(metadata.tables)
        assert _schema(postgres_db) == expected
    finally:
        drop_database(postgres_url, by_package)

    # the package works on a database that init.sql created
    store = SqlStore(postgres_db)
    store.write([window(0)], [anomaly(0, datetime(2024, 3, 4, 15, tzinfo=UTC))])
    assert store.count(market_anomalies) == 1
    store.close()
