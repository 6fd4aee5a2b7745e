"""The processor over a bulk store (writes on the store's thread) whose SQLite file refuses
writes for a while: the rows are held and written again in order, and the file ends with
exactly the rows of a run on the synchronous store."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, select

from tickwatch.config import load_settings
from tickwatch.errors import StoreError
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts, market_events
from tickwatch.store.sql import clean_market_data, dead_letters, market_anomalies

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NOW = datetime(2024, 3, 6, tzinfo=UTC)
SIM = MarketSimulator(["AAPL", "MSFT"], ["bitcoin"], seed=5, anomaly_rate=0.05)
DATA = [tick_to_record(t) for w in SIM.windows(START, START + timedelta(hours=4)) for t in w]
DATA += [{"symbol": "AAPL", "price": "not a number"}]  # one dead letter
CHUNK = 400


def rows(store: SqlStore) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    table: Table
    with store.engine.connect() as conn:
        for table in (clean_market_data, market_anomalies, alerts, market_events, dead_letters):
            columns = [c for c in table.c if c.name not in ("detected_at", "received_at")]
            found[table.name] = sorted(tuple(r) for r in conn.execute(select(*columns)))
    return found


def feed(processor: Processor, records: list[dict[str, Any]]) -> None:
    for i in range(0, len(records), CHUNK):
        processor.handle(records[i : i + CHUNK])


def refuse(path: Path, on: bool) -> None:
    """A trigger that makes SQLite abort every window upsert while `fault.on` is 1."""
    with sqlite3.connect(path, timeout=30) as con:
        con.execute("create table if not exists fault (on_ integer)")
        con.execute(
            "create trigger if not exists refuse before insert on clean_market_data "
            "when (select on_ from fault) begin select raise(abort, 'the disk says no'); end"
        )
        con.execute("delete from fault")
        con.execute("insert into fault values (?)", (int(on),))


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Any]]]:
    """The rows of the same input through the synchronous store."""
    clean = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('clean') / 'clean.db'}")
    plain = Processor(load_settings(), clean, None, clock=lambda: NOW)
    feed(plain, DATA)
    plain.finish()
    found = rows(clean)
    clean.close()
    assert len(found["clean_market_data"]) > 100 and found["market_anomalies"]
    assert found["alerts"] and len(found["dead_letters"]) == 1
    yield found


def test_refused_writes_are_held_and_written_again_in_order(
    tmp_path: Path, expected: dict[str, list[Any]]
):

    path = tmp_path / "bulk.db"
    store = SqlStore(f"sqlite:///{path}", bulk=True)
    processor = Processor(load_settings(), store, None, clock=lambda: NOW)
    third = len(DATA) // 3 // CHUNK * CHUNK
    feed(processor, DATA[:third])
    refuse(path, True)
    feed(processor, DATA[third : 2 * third])  # the pipeline goes on while the store refuses
    with contextlib.suppress(StoreError):  # the caller that looks first sees the error
        store.flush()
    processor.retry()  # its writes failed: held, and sent again (refused again)
    with contextlib.suppress(StoreError):
        store.flush()
    assert processor.store_error is not None and "the disk says no" in processor.store_error
    assert processor.held_batches > 0
    refuse(path, False)
    feed(processor, DATA[2 * third :])
    processor.finish()
    assert processor.store_error is None and processor.held_batches == 0
    assert rows(store) == expected
    store.close()


def test_rows_still_refused_at_the_end_are_counted_in_the_error(
    tmp_path: Path, expected: dict[str, list[Any]]
):
    path = tmp_path / "bulk.db"
    store = SqlStore(f"sqlite:///{path}", bulk=True)
    processor = Processor(load_settings(), store, None, clock=lambda: NOW)
    refuse(path, True)
    feed(processor, DATA)
    with pytest.raises(StoreError) as raised:
        processor.finish()
    with sqlite3.connect(path) as con:
        stored = con.execute("select count(*) from clean_market_data").fetchone()[0]
    store.close()
    # every window refused; the anomalies and the dead letter wait behind them, none lost
    windows = len(expected["clean_market_data"])
    anomalies = len(expected["market_anomalies"])
    assert (processor.held_rows, stored) == ((windows, anomalies, 1), 0)
    lost = windows + anomalies + 1
    assert str(raised.value).startswith(f"could not store {lost:,} rows: {windows:,} windows, ")
    assert "the disk says no" in str(raised.value)
