"""The tick stream and the row comparison shared by the Spark parity and restart tests.

The stream: three symbols (one stock in its session, two cryptos) from the simulator, three
hours, so each symbol has about 36 windows and baselines fill after 5; injected anomalies make
sure some windows score beyond |z| > 3. On top of it, the awkward cases: an exact duplicate
while its window is open, a duplicate of a tick whose window already closed, a late tick, a
malformed JSON line and a record with a negative price.

The expected rows come from the embedded pipeline (`tickwatch.processor.Processor` over a
throwaway SQLite store), fed the very same bytes in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from tickwatch.bus.kafka import KafkaBus
from tickwatch.config import load_settings
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.store.sql import clean_market_data, dead_letters, market_anomalies

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)  # a Monday, 09:30 in New York


@dataclass(frozen=True)
class Message:
    topic: str
    key: str
    value: bytes


def tick_stream(hours: float = 3.0) -> list[Message]:
    simulator = MarketSimulator(["AAPL"], ["bitcoin", "ethereum"], seed=11, anomaly_rate=0.08)
    ticks = [t for batch in simulator.windows(START, START + timedelta(hours=hours)) for t in batch]
    messages = [
        Message(t.asset_type.raw_topic, t.symbol, orjson.dumps(tick_to_record(t))) for t in ticks
    ]
    third = len(messages) // 3
    btc = [i for i, m in enumerate(messages) if m.key == "bitcoin"]
    late = orjson.loads(messages[btc[len(btc) // 2]].value)
    late_time = datetime.fromisoformat(late["event_time"]) - timedelta(minutes=40)
    late.update(event_time=late_time.isoformat(), ingest_time=late_time.isoformat(), price=1.5)
    extras = [
        (third, messages[third - 1]),  # duplicate, its window still open
        (2 * third, messages[third]),  # duplicate of a tick whose window closed
        (btc[len(btc) // 2] + 1, Message("raw_crypto_ticks", "bitcoin", orjson.dumps(late))),
        (third + 5, Message("raw_crypto_ticks", "bitcoin", b'{"symbol": "bitcoin", "price": ')),
        (
            third + 9,
            Message(
                "raw_stock_ticks",
                "AAPL",
                orjson.dumps({**orjson.loads(messages[third + 9].value), "price": -3.0}),
            ),
        ),
    ]
    for position, message in sorted(extras, key=lambda e: e[0], reverse=True):
        messages.insert(position, message)
    return messages


def produce(bootstrap: str, prefix: str, messages: Sequence[Message]) -> None:
    bus = KafkaBus(bootstrap, topic_prefix=prefix, partitions=3, replication=1)
    for message in messages:
        bus.publish(message.topic, message.key, message.value)
    bus.close(timeout=60)
    assert bus.failed == 0 and bus.delivered == len(messages)


def embedded(messages: Sequence[Message], folder: Path) -> tuple[SqlStore, Processor]:
    """The embedded pipeline's store after the same bytes; open windows stay open."""
    store = SqlStore(f"sqlite:///{folder / 'embedded.db'}")
    processor = Processor(load_settings(data_dir=folder), store, None)
    processor.handle([m.value for m in messages])
    return store, processor


def _rows(store: SqlStore, table: sa.Table, skip: tuple[str, ...]) -> list[dict[str, Any]]:
    engine = store.engine
    keys = [c.name for c in table.primary_key.columns]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*[table.c[k] for k in keys])).mappings()
        return [{k: v for k, v in row.items() if k not in skip} for row in rows]


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(left, datetime) and isinstance(right, datetime):
        return left == right
    return bool(left == right)


def assert_same_rows(actual: SqlStore, expected: SqlStore) -> dict[str, int]:
    """Every table row by row (floats within 1e-9 relative); returns the row counts."""
    counts = {}
    for table, skip in (
        (clean_market_data, ()),
        (market_anomalies, ("detected_at",)),
        (dead_letters, ("received_at",)),
    ):
        got, want = _rows(actual, table, skip), _rows(expected, table, skip)
        assert len(got) == len(want), f"{table.name}: {len(got)} rows, expected {len(want)}"
        for g, w in zip(got, want, strict=True):
            bad = [k for k in w if not _same(g[k], w[k])]
            assert not bad, f"{table.name} row {w}: columns {bad} differ: {g}"
        counts[table.name] = len(want)
    return counts
