"""The tick log: a crash loses no tick of a window that was still open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from tickwatch.config import load_settings
from tickwatch.model import EPOCH
from tickwatch.normalize import parse_tick
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.store.sql import dead_letters
from tickwatch.store.ticklog import TickLog

START = datetime(2024, 3, 4, 13, 0, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def records() -> list[dict[str, object]]:
    sim = MarketSimulator(["AAPL"], ["bitcoin", "ethereum"], seed=3, anomaly_rate=0.05)
    return [tick_to_record(t) for w in sim.windows(START, START + timedelta(hours=6)) for t in w]


def table(store: SqlStore, name: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        order = "symbol, window_start" + (", anomaly_type" if name == "market_anomalies" else "")
        rows = conn.execute(text(f"select * from {name} order by {order}")).all()
    return [tuple(v for k, v in r._mapping.items() if k != "detected_at") for r in rows]


def test_a_processor_that_dies_mid_stream_leaves_the_same_rows_after_restart(tmp_path: Path):
    data = records()
    settings = load_settings(data_dir=tmp_path)

    clean = SqlStore(f"sqlite:///{tmp_path / 'clean.db'}")
    whole = Processor(settings, clean, None, clock=lambda: NOW)
    for i in range(0, len(data), 500):
        whole.handle(data[i : i + 500])
    whole.finish()

    store = SqlStore(f"sqlite:///{tmp_path / 'crash.db'}")
    log_path = tmp_path / "ticks.wal"
    first = Processor(settings, store, None, clock=lambda: NOW, tick_log=TickLog(log_path))
    cut = len(data) // 2 + 123
    for i in range(0, cut, 500):
        first.handle(data[i : min(i + 500, cut)])
    first.checkpoint()
    first.handle(data[cut : cut + 50])  # logged after the checkpoint, then the process dies
    del first  # no finish(): open windows and in-memory state are lost

    second = Processor(settings, store, None, clock=lambda: NOW, tick_log=TickLog(log_path))
    second.restore()
    for i in range(cut + 50, len(data), 500):
        second.handle(data[i : i + 500])
    second.finish()

    assert table(store, "clean_market_data") == table(clean, "clean_market_data")
    assert table(store, "market_anomalies") == table(clean, "market_anomalies")
    assert len(table(clean, "market_anomalies")) > 0
    assert store.count(dead_letters) == 0
    assert TickLog(log_path).read() == []  # a clean finish empties the log


def test_a_torn_last_line_is_skipped(tmp_path: Path):
    log = TickLog(tmp_path / "t.wal")
    tick = parse_tick(records()[0], EPOCH, timedelta(days=36500))
    log.append([tick, tick])
    log.close()
    with (tmp_path / "t.wal").open("ab") as handle:
        handle.write(b'{"source": "simulator", "asset_t')
    assert TickLog(tmp_path / "t.wal").read() == [tick, tick]
