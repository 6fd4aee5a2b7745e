"""PostgreSQL migrations (store/migrate.py) on a real PostgreSQL: an old deployment's schema and
rows upgraded to today's tables, the head equal to the package's tables, idempotent upgrades,
the newest revision's downgrade.

The old schemas are the seed's own storage/init.sql (commit b4ada56) and the alert_deliveries
table the second release added (commit 33bae34), kept verbatim under tests/data/postgres.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.test_postgres_store import INIT_SQL, _schema
from tests.services import drop_database, fresh_database
from tickwatch.errors import StoreError
from tickwatch.store import SqlStore, migrate
from tickwatch.store.ddl import all_tables

pytestmark = pytest.mark.postgres

DATA = Path(__file__).resolve().parents[1] / "data" / "postgres"
SEED = (DATA / "seed_init.sql").read_text()
SEED_DELIVERIES = (DATA / "seed_alert_deliveries.sql").read_text()
NEWEST = "0004_divergences"
T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


def _run_sql(url: str, *scripts: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for script in scripts:
            conn.exec_driver_sql(script)
    engine.dispose()


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text(query))]
    engine.dispose()
    return rows


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


@pytest.fixture
def other_db(postgres_url: str) -> Iterator[str]:
    url = fresh_database(postgres_url)
    yield url
    drop_database(postgres_url, url)


@pytest.fixture
def fresh_at_head(other_db: str) -> dict[str, Any]:
    """The schema a new deployment gets: an empty database opened by the store."""
    SqlStore(other_db).close()
    return _schema(other_db)


SEED_ROWS = """
INSERT INTO clean_market_data (symbol, window_start, window_end, asset_type, open, high, low,
    close, volume, tick_count, vwap, price_return_pct, volatility, volume_z)
VALUES ('AAPL', '2024-03-04 15:00+00', '2024-03-04 15:05+00', 'stock', 100, 102, 99, 101.5,
        1200, 7, 100.75, 1.5, 0.25, 3.5),
       ('bitcoin', '2024-03-04 15:00+00', '2024-03-04 15:05+00', 'crypto', 60000, 60100,
        59900, 60050, NULL, 3, NULL, 0.0833, NULL, NULL);
INSERT INTO market_anomalies VALUES ('AAPL', '2024-03-04 15:00+00', 'volume_surge',
    '2024-03-04 15:05+00', 'stock', 1200, 400, 228.5714, 3.5, 'low', '2024-03-04 15:06:01+00');
INSERT INTO dead_letters VALUES ('f00d', 'invalid', 'price is not finite: nan', 'replay',
    'AAPL', '{"price": NaN}', '2024-03-04 15:01+00');
INSERT INTO alert_deliveries (symbol, window_start, anomaly_type, severity, status, attempts,
    http_status, error, delivered_at)
VALUES ('AAPL', '2024-03-04 15:00+00', 'volume_surge', 'low', 'sent', 1, 200, NULL,
        '2024-03-04 15:06:02+00'),
       ('MSFT', '2024-03-04 20:55-05', 'price_spike', 'high', 'failed', 3, 503, 'Server Error',
        '2024-03-05 02:00:30+00');
"""


def test_an_old_deployment_upgrades_to_todays_schema_keeping_its_rows(
    postgres_db: str, fresh_at_head: dict[str, Any]
) -> None:
    _run_sql(postgres_db, SEED, SEED_DELIVERIES, SEED_ROWS)

    store = SqlStore(postgres_db)  # opening the store migrates it
    store.close()

    assert migrate.current(store.engine) == NEWEST
    assert _schema(postgres_db) == fresh_at_head
    assert "alert_deliveries" not in _tables(postgres_db)
    assert _rows(
        postgres_db,
        "select symbol, window_start, close, volume, tick_count, vwap, volatility, volume_z "
        "from clean_market_data order by symbol",
    ) == [
        ("AAPL", T0, 101.5, 1200.0, 7, 100.75, 0.25, 3.5),
        ("bitcoin", T0, 60050.0, None, 3, None, None, None),
    ]
    assert _rows(
        postgres_db, "select anomaly_type, z_score, detected_at from market_anomalies"
    ) == [("volume_surge", 3.5, datetime(2024, 3, 4, 15, 6, 1, tzinfo=UTC))]
    assert _rows(postgres_db, "select fingerprint, reason from dead_letters") == [
        ("f00d", "price is not finite: nan")
    ]
    # the webhook log moved over, one notification per delivery, window in UTC
    assert _rows(
        postgres_db,
        "select kind, alert_id, symbol, severity, text, status, attempts, http_status, error, "
        "delivered_at from alert_notifications order by id",
    ) == [
        ("anomaly", None, "AAPL", "low", "volume_surge at 2024-03-04T15:00:00Z", "sent", 1, 200,
         None, datetime(2024, 3, 4, 15, 6, 2, tzinfo=UTC)),
        ("anomaly", None, "MSFT", "high", "price_spike at 2024-03-05T01:55:00Z", "failed", 3,
         503, "Server Error", datetime(2024, 3, 5, 2, 0, 30, tzinfo=UTC)),
    ]  # fmt: skip
    # the serial goes on after the moved rows
    _run_sql(
        postgres_db,
        "insert into alert_notifications (kind, text, status, attempts, delivered_at) "
        "values ('opened', 'x', 'sent', 1, now())",
    )
    assert _rows(postgres_db, "select max(id) from alert_notifications") == [(3,)]


def test_the_head_equals_the_tables_the_package_declares(postgres_db: str) -> None:
    engine = sa.create_engine(postgres_db)
    assert migrate.upgrade(engine) == (None, NEWEST)
    assert migrate.head() == NEWEST
    assert migrate.differences(engine, all_tables()) == []
    # the check can fail: a table the package declares but no revision creates is a difference
    extra = sa.MetaData()
    for table in all_tables().tables.values():
        table.to_metadata(extra)
    sa.Table("not_migrated", extra, sa.Column("id", sa.Integer, primary_key=True))
    (difference,) = migrate.differences(engine, extra)
    assert difference[0] == "add_table" and difference[1].name == "not_migrated"
    engine.dispose()


def test_the_baseline_is_the_seeds_schema(postgres_db: str, other_db: str) -> None:
    _run_sql(postgres_db, SEED)
    engine = sa.create_engine(other_db)
    migrate.upgrade(engine, "0001_seed")
    engine.dispose()
    assert _schema(other_db) == _schema(postgres_db)


def test_upgrading_twice_changes_nothing(postgres_db: str) -> None:
    _run_sql(postgres_db, SEED, SEED_ROWS.split("INSERT INTO alert_deliveries")[0])
    engine = sa.create_engine(postgres_db)
    assert migrate.upgrade(engine) == (None, NEWEST)
    schema, rows = _schema(postgres_db), _rows(postgres_db, "select * from clean_market_data")
    assert migrate.upgrade(engine) == (NEWEST, NEWEST)
    SqlStore(postgres_db).close()
    assert _schema(postgres_db) == schema
    assert _rows(postgres_db, "select * from clean_market_data") == rows
    assert _rows(postgres_db, "select version_num from alembic_version") == [(NEWEST,)]
    engine.dispose()


def test_the_newest_revision_downgrades_and_upgrades_again(
    postgres_db: str, fresh_at_head: dict[str, Any]
) -> None:
    engine = sa.create_engine(postgres_db)
    migrate.upgrade(engine)
    assert migrate.downgrade(engine, "-1") == (NEWEST, "0003_provenance")
    assert "divergences" not in _tables(postgres_db)
    assert {"provenance", "alerts", "clean_market_data"} <= _tables(postgres_db)
    assert migrate.upgrade(engine) == ("0003_provenance", NEWEST)
    assert _schema(postgres_db) == fresh_at_head
    # all the way down leaves only Alembic's version table
    assert migrate.downgrade(engine, "base") == (NEWEST, None)
    assert _tables(postgres_db) == {"alembic_version"}
    engine.dispose()


def test_a_database_made_by_init_sql_is_adopted(
    postgres_db: str, fresh_at_head: dict[str, Any]
) -> None:
    _run_sql(postgres_db, INIT_SQL.read_text())
    SqlStore(postgres_db).close()
    assert _schema(postgres_db) == fresh_at_head


def test_stores_opening_an_empty_database_at_once_migrate_it_once(postgres_db: str) -> None:
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            SqlStore(postgres_db).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert _rows(postgres_db, "select version_num from alembic_version") == [(NEWEST,)]


def test_a_database_from_a_newer_version_is_refused_with_what_to_do(postgres_db: str) -> None:
    SqlStore(postgres_db).close()
    _run_sql(postgres_db, "update alembic_version set version_num = '0099_future'")
    with pytest.raises(StoreError, match=r"0099_future.*knows up to 0004_divergences") as info:
        SqlStore(postgres_db)
    assert "tickwatch store downgrade --to 0004_divergences" in str(info.value)


def test_tickwatch_store_upgrade(postgres_db: str) -> None:
    from typer.testing import CliRunner

    from tickwatch.cli import app

    _run_sql(postgres_db, SEED)
    first = CliRunner().invoke(app, ["store", "upgrade", "--store", postgres_db])
    again = CliRunner().invoke(app, ["store", "upgrade", "--store", postgres_db])
    assert first.exit_code == 0 and again.exit_code == 0, first.output + again.output
    said, said_again = (" ".join(r.output.split()) for r in (first, again))
    assert "Running upgrade 0003_provenance -> 0004_divergences" in said
    assert "migrated from no version to 0004_divergences" in said
    assert "Context impl" not in said and "setup plugin" not in said  # Alembic's routine
    assert said_again.endswith("at 0004_divergences, nothing to do")
    assert ":***@" in said  # the URL is shown with its password masked
    assert "divergences" in _tables(postgres_db)

    back = CliRunner().invoke(app, ["store", "downgrade", "--to", "-1", "--store", postgres_db])
    assert back.exit_code == 0, back.output
    assert "migrated from 0004_divergences to 0003_provenance" in " ".join(back.output.split())
    assert "divergences" not in _tables(postgres_db)

    wrong = sa.make_url(postgres_db).set(password="s3cret-pw").render_as_string(False)
    refused = CliRunner().invoke(app, ["store", "upgrade", "--store", wrong])
    assert refused.exit_code == 2
    assert "cannot migrate" in refused.output and "s3cret-pw" not in refused.output
