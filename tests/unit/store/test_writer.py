"""The bulk store's writer thread (store/writer.py) on a real SQLite file: submit order is
apply order, a failure reaches the caller with the synchronous write's error, reads see every
submitted write, and the queue is bounded."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from tests.unit.store.test_sql import T0, window
from tickwatch.errors import StoreError
from tickwatch.store.sql import SqlStore, clean_market_data
from tickwatch.store.writer import Writer


def _closes(path: Path) -> dict[str, float]:
    with sqlite3.connect(path) as con:
        return dict(con.execute("select window_start, close from clean_market_data"))


def test_the_later_of_two_upserts_of_one_key_wins(tmp_path: Path):
    path = tmp_path / "tickwatch.db"
    store = SqlStore(f"sqlite:///{path}", bulk=True)
    for close in (101.0, 105.0, 103.0):  # the same key three times: the last submitted wins
        store.submit(store.write, [window(0, close=close)], [])
    store.submit(store.write, [window(1, close=110.0)], [])
    store.close()
    assert _closes(path) == {
        "2024-03-04T14:30:00.000+00:00": 103.0,
        "2024-03-04T14:35:00.000+00:00": 110.0,
    }


def test_reads_see_every_submitted_write(tmp_path: Path):
    store = SqlStore(f"sqlite:///{tmp_path / 'tickwatch.db'}", bulk=True)
    for i in range(30):  # no flush between: each read waits for the writes before it
        store.submit(store.write, [window(i), window(i, symbol="MSFT")], [])
    assert store.count(clean_market_data) == 60
    assert store.latest_window_end() == window(29).window_end
    assert store.latest_window_ends() == {"AAPL": window(29).window_end,
                                          "MSFT": window(29).window_end}  # fmt: skip
    assert [w.window_start for w in store.recent_windows(2) if w.symbol == "AAPL"] == [
        window(28).window_start,
        window(29).window_start,
    ]
    assert len(store.windows_from({"MSFT": window(25).window_start})) == 5  # windows 25..29
    store.close()


def test_a_failed_write_reaches_the_caller_with_its_message(tmp_path: Path):
    path = tmp_path / "tickwatch.db"
    store = SqlStore(f"sqlite:///{path}", bulk=True)
    bad = replace(window(1), open=None)  # NOT NULL column: SQLite refuses the row
    first = store.submit(store.write, [window(0)], [])
    failed = store.submit(store.write, [bad], [])
    after = store.submit(store.write, [window(2)], [])  # queued behind the failure
    message = (
        f"cannot write 1 rows to clean_market_data in sqlite:///{path}: "
        "NOT NULL constraint failed: clean_market_data.open"
    )
    with pytest.raises(StoreError) as raised:
        store.flush()
    assert str(raised.value) == message
    assert first.exception() is None
    assert str(failed.exception()) == message
    assert str(after.exception()) == message  # not applied: order is kept for the retry
    assert set(_closes(path)) == {"2024-03-04T14:30:00.000+00:00"}
    store.flush()  # seen once: the writer takes writes again
    store.submit(store.write, [window(2)], [])
    store.close()
    assert len(_closes(path)) == 2


def test_the_same_error_as_the_synchronous_write(tmp_path: Path):
    bad = replace(window(0), open=None)
    with pytest.raises(StoreError) as synchronous:
        SqlStore(f"sqlite:///{tmp_path / 'a.db'}").write([bad], [])
    store = SqlStore(f"sqlite:///{tmp_path / 'b.db'}", bulk=True)
    store.submit(store.write, [bad], []).exception()  # waits until the writer has failed
    with pytest.raises(StoreError) as threaded:
        store.submit(store.write, [window(1)], [])  # the next submit raises it
    assert str(threaded.value) == str(synchronous.value).replace("a.db", "b.db")
    store.close()


def test_close_raises_an_unseen_failure_and_still_builds_the_indexes(tmp_path: Path):
    path = tmp_path / "tickwatch.db"
    store = SqlStore(f"sqlite:///{path}", bulk=True)
    store.submit(store.write, [window(0)], [])
    store.submit(store.write, [replace(window(1), open=None)], [])
    with pytest.raises(StoreError, match="NOT NULL constraint failed"):
        store.close()
    with sqlite3.connect(path) as con:
        names = {n for (n,) in con.execute("select name from sqlite_master where type='index'")}
    assert {"ix_clean_window_start", "ix_clean_asset_type_window_start"} <= names
    assert set(_closes(path)) == {"2024-03-04T14:30:00.000+00:00"}


def test_submit_waits_while_the_queue_is_full():
    release = threading.Event()
    writer = Writer("test-writer", depth=2)
    done: list[int] = []
    writer.submit(release.wait)  # running: holds the thread
    writer.submit(done.append, 1)
    writer.submit(done.append, 2)  # the queue holds 2: full
    fourth = threading.Thread(target=writer.submit, args=(done.append, 3))
    fourth.start()
    fourth.join(0.3)
    assert fourth.is_alive()  # still waiting for room
    release.set()
    fourth.join()
    writer.close()
    assert done == [1, 2, 3]


def test_a_store_without_the_thread_writes_at_once(tmp_path: Path):
    path = tmp_path / "tickwatch.db"
    store = SqlStore(f"sqlite:///{path}")
    assert store.submit(store.write, [window(0)], []).done()
    assert _closes(path) == {T0.isoformat(timespec="milliseconds"): 101.0}
    with pytest.raises(StoreError, match="NOT NULL constraint failed"):
        store.submit(store.write, [replace(window(1), open=None)], [])
    store.close()
