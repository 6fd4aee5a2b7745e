"""`tickwatch run --bus kafka --store postgresql://...`: the runtime produces into a real broker
and leaves processing to the Spark job."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tickwatch.bus.kafka import KafkaBus
from tickwatch.config import load_settings
from tickwatch.model import RAW_CRYPTO_TICKS, RAW_STOCK_TICKS
from tickwatch.runtime import Runtime
from tickwatch.sources.replay import ReplaySource
from tickwatch.store.sql import clean_market_data

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_run_on_kafka_publishes_every_tick_to_its_raw_topic(
    tmp_path: Path, kafka_bootstrap: str, postgres_db: str
) -> None:
    source = f"run-{uuid.uuid4().hex[:8]}"  # tells this test's ticks apart on the shared topics
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    lines = []
    for i in range(30):
        moment = (start + timedelta(seconds=20 * i)).isoformat()
        for symbol, kind in (("AAPL", "stock"), ("MSFT", "stock"), ("bitcoin", "crypto")):
            record = {"source": source, "asset_type": kind, "symbol": symbol, "seq": i}
            lines.append(orjson.dumps({**record, "event_time": moment, "price": 100.0 + i}))
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_bytes(b"\n".join(lines) + b"\n")

    settings = load_settings(
        bus="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        store_url=postgres_db,
        data_dir=tmp_path / "data",
    )
    runtime = Runtime(settings, [ReplaySource([ticks])])
    runtime.start()
    deadline = time.monotonic() + 60
    while not runtime.sources_finished() and time.monotonic() < deadline:
        time.sleep(0.1)
    runtime.shutdown()  # flushes the producer
    assert runtime.published == 90
    assert runtime.store.count(clean_market_data) == 0  # no embedded engine on Kafka

    reader = KafkaBus(kafka_bootstrap, group=f"check-{source}")
    consumer = reader.subscribe([RAW_STOCK_TICKS, RAW_CRYPTO_TICKS])
    mine: list[tuple[str, dict[str, object]]] = []
    deadline = time.monotonic() + 30
    while len(mine) < 90 and time.monotonic() < deadline:
        for topic, value in consumer.poll(1000, 0.5):
            record = orjson.loads(value)
            if record.get("source") == source:
                mine.append((topic, record))
    consumer.close()
    reader.close()

    assert len(mine) == 90
    for symbol, topic in (("AAPL", RAW_STOCK_TICKS), ("MSFT", RAW_STOCK_TICKS)):
        assert [r["seq"] for t, r in mine if r["symbol"] == symbol and t == topic] == list(
            range(30)
        )
    assert [r["seq"] for t, r in mine if t == RAW_CRYPTO_TICKS] == list(range(30))
