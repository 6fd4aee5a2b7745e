"""Divergences fed from the processor's tick stream into the `divergences` table: both input
paths (records and columnar batches), replays and restarts write each divergence once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tickwatch.config import load_settings
from tickwatch.engine.batch import TickBatch
from tickwatch.normalize import parse_tick
from tickwatch.processor import Processor
from tickwatch.store import SqlStore
from tickwatch.store.divergence_rows import divergences
from tickwatch.store.ticklog import TickLog

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def record(venue: str, second: int, price: float) -> dict[str, Any]:
    moment = (T0 + timedelta(seconds=second)).isoformat()
    return {
        "source": venue,
        "asset_type": "crypto",
        "symbol": "BTC-USD",
        "event_time": moment,
        "ingest_time": moment,
        "price": price,
        "volume": 0.5,
    }


# both venues quote every 10 s; kraken is 400 above from 60 s to 1,500 s (400 / 50,200 = 79.68
# bps, 24 minutes: longer than the windows the tick log keeps), then a 20 s blip at 1,700 s
SECONDS = range(0, 2000, 10)


def price(venue: str, second: int) -> float:
    if venue == "kraken" and 60 <= second < 1500:
        return 50_400.0
    if venue == "kraken" and 1700 <= second < 1720:
        return 50_600.0
    return 50_000.0


RECORDS = [record(v, s, price(v, s)) for s in SECONDS for v in ("coinbase", "kraken")]


def stored(store: SqlStore) -> list[tuple[object, ...]]:
    columns = divergences.c
    query = select(columns.venues, columns.started_at, columns.ended_at, columns.max_bps)
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query.order_by(columns.started_at))]


EXPECTED = [
    ("coinbase|kraken", T0 + timedelta(seconds=60), T0 + timedelta(seconds=1500), 400 / 50_200e-4)
]


def settings(tmp_path: Path) -> Any:
    return load_settings(data_dir=tmp_path, max_clock_skew_seconds=10**9)


def test_records_on_two_venues_store_one_divergence_and_a_replay_adds_none(tmp_path: Path):
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    for _ in range(2):  # the same input twice: upserts on the key
        processor = Processor(settings(tmp_path), store, None, clock=lambda: NOW)
        for i in range(0, len(RECORDS), 7):
            processor.handle(RECORDS[i : i + 7])
        processor.finish()
        assert stored(store) == EXPECTED
        assert processor.divergence.blips == 1


def test_columnar_batches_store_the_same_divergence(tmp_path: Path):
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    processor = Processor(settings(tmp_path), store, None, clock=lambda: NOW)
    ticks = [parse_tick(r, NOW, timedelta(days=10**5)) for r in RECORDS]
    processor.handle_batch(TickBatch.from_ticks(ticks))
    processor.finish()
    assert stored(store) == EXPECTED


def test_a_restart_mid_divergence_keeps_one_row(tmp_path: Path):
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    log_path = tmp_path / "ticks.wal"
    cut = RECORDS.index(record("kraken", 1200, 50_400.0)) + 1  # flagged and still open
    first = Processor(
        settings(tmp_path), store, None, clock=lambda: NOW, tick_log=TickLog(log_path)
    )
    first.handle(RECORDS[:cut])
    first.checkpoint()  # the log keeps only the open windows' ticks: not the start at 60 s
    assert [row[2] for row in stored(store)] == [None]  # open at the stop
    del first  # dies without finish()
    second = Processor(
        settings(tmp_path), store, None, clock=lambda: NOW, tick_log=TickLog(log_path)
    )
    second.restore()
    second.handle(RECORDS[cut:])
    second.finish()
    assert stored(store) == EXPECTED
