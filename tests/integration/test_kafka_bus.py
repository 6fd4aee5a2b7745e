"""The Kafka bus against a real single-node KRaft broker (scripts/kafka.sh)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from tests.ledger import Ledger
from tests.services import KafkaBroker
from tickwatch.bus import Consumer
from tickwatch.bus.kafka import TOPICS, KafkaBus, ensure_topics
from tickwatch.model import (
    CLEAN_MARKET_DATA,
    RAW_CRYPTO_TICKS,
    RAW_STOCK_TICKS,
    Anomaly,
    AnomalyType,
    AssetType,
    Severity,
)

pytestmark = pytest.mark.kafka

FAST_RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 500}


def drain(consumer: Consumer, expected: int, seconds: float = 30.0) -> list[tuple[str, bytes]]:
    """Poll until `expected` messages arrived (or time runs out), then a little longer, so a
    duplicate would show up too."""
    items: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + seconds
    while len(items) < expected and time.monotonic() < deadline:
        items.extend(consumer.poll(1000, 0.5))
    items.extend(consumer.poll(1000, 1.0))
    return items


@pytest.fixture
def bus(kafka_bootstrap: str) -> Iterator[KafkaBus]:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    bus = KafkaBus(kafka_bootstrap, group=f"g-{prefix}", topic_prefix=prefix)
    yield bus
    bus.close()


def test_round_trip_keeps_each_symbols_order(bus: KafkaBus) -> None:
    symbols = ["AAPL", "MSFT", "TSLA", "IBM", "AMZN"]
    for seq in range(40):
        for symbol in symbols:
            bus.publish(RAW_STOCK_TICKS, symbol, {"symbol": symbol, "seq": seq, "price": 1.5})
    bus.publish(RAW_CRYPTO_TICKS, "bitcoin", {"symbol": "bitcoin", "seq": 0, "price": 2.0})
    assert bus.flush(30) == 0

    consumer = bus.subscribe([RAW_STOCK_TICKS, RAW_CRYPTO_TICKS])
    items = drain(consumer, 201)
    consumer.close()

    assert len(items) == 201
    topics = [topic for topic, _ in items]
    assert topics.count(RAW_STOCK_TICKS) == 200 and topics.count(RAW_CRYPTO_TICKS) == 1
    seen: dict[str, list[int]] = {}
    for _, value in items:
        record = orjson.loads(value)
        seen.setdefault(record["symbol"], []).append(record["seq"])
    assert seen.pop("bitcoin") == [0]
    assert seen == {symbol: list(range(40)) for symbol in symbols}


def test_values_are_json_rows_and_bad_bytes_pass_untouched(bus: KafkaBus) -> None:
    start = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
    anomaly = Anomaly(
        "AAPL",
        AssetType.STOCK,
        start,
        start.replace(minute=5),
        AnomalyType.PRICE_SPIKE,
        2.5,
        0.1,
        0.5,
        4.8,
        Severity.MEDIUM,
        start.replace(minute=6),
    )
    bus.publish(CLEAN_MARKET_DATA, "AAPL", anomaly)
    bus.publish(CLEAN_MARKET_DATA, "AAPL", b"{not json")
    consumer = bus.subscribe([CLEAN_MARKET_DATA])
    items = drain(consumer, 2)
    consumer.close()

    assert [value for _, value in items][1] == b"{not json"
    assert orjson.loads(items[0][1]) == {
        "symbol": "AAPL",
        "asset_type": "stock",
        "window_start": "2024-03-04T10:00:00+00:00",
        "window_end": "2024-03-04T10:05:00+00:00",
        "anomaly_type": "price_spike",
        "value": 2.5,
        "mean": 0.1,
        "std": 0.5,
        "z_score": 4.8,
        "severity": "medium",
        "detected_at": "2024-03-04T10:06:00+00:00",
    }


def test_topic_creation_is_idempotent(kafka_bootstrap: str, bus: KafkaBus) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert ensure_topics(admin, TOPICS, bus.prefix) == []
    again = KafkaBus(kafka_bootstrap, topic_prefix=bus.prefix)
    again.close()

    metadata = admin.list_topics(timeout=10)
    names = [bus.prefix + spec.name for spec in TOPICS]
    assert all(len(metadata.topics[name].partitions) == 3 for name in names)
    resource = ConfigResource(ResourceType.TOPIC, bus.prefix + RAW_STOCK_TICKS)
    config = next(iter(admin.describe_configs([resource]).values())).result()
    assert config["retention.ms"].value == str(7 * 24 * 3600 * 1000)


def test_a_new_consumer_in_the_group_resumes_after_the_handled_batch(bus: KafkaBus) -> None:
    for seq in range(10):
        bus.publish(RAW_STOCK_TICKS, "AAPL", {"symbol": "AAPL", "seq": seq})
    bus.flush(30)
    first = bus.subscribe([RAW_STOCK_TICKS])
    handled = drain(first, 10)
    first.close()  # the batch was handed out and the consumer closed: it counts as handled
    for seq in range(10, 13):
        bus.publish(RAW_STOCK_TICKS, "AAPL", {"symbol": "AAPL", "seq": seq})
    bus.flush(30)
    second = bus.subscribe([RAW_STOCK_TICKS])
    rest = drain(second, 3)
    second.close()

    assert [orjson.loads(v)["seq"] for _, v in handled] == list(range(10))
    assert [orjson.loads(v)["seq"] for _, v in rest] == [10, 11, 12]


def test_producer_buffers_while_the_broker_is_down_and_loses_nothing(
    caplog: pytest.LogCaptureFixture, ledger: Ledger
) -> None:
    broker = KafkaBroker()
    bootstrap = broker.start()
    broker.stop(keep=True)  # down before the bus even starts
    caplog.set_level(logging.WARNING, logger="tickwatch.bus.kafka")
    try:
        bus = KafkaBus(bootstrap, group="outage", client_config=FAST_RECONNECT, start_timeout=1)
        assert not bus.topics_ready.is_set()
        for seq in range(100):
            bus.publish(RAW_CRYPTO_TICKS, f"coin{seq % 4}", {"seq": seq})
        assert bus.flush(1) == 100  # nowhere to go: all buffered
        broker.start()
        assert bus.flush(60) == 0  # topics created once the broker answered, then delivered
        assert bus.topics_ready.is_set()

        broker.stop(keep=True)  # and down again while running
        for seq in range(100, 300):
            bus.publish(RAW_CRYPTO_TICKS, f"coin{seq % 4}", {"seq": seq})
        assert bus.flush(2) == 200
        broker.start()
        assert bus.flush(60) == 0
        assert bus.failed == 0
        bus.close()
        messages = [r.getMessage() for r in caplog.records]
        assert any("did not answer" in m for m in messages)
        assert any("unreachable" in m for m in messages)
        assert any("reachable again" in m for m in messages)

        reader = KafkaBus(bootstrap, group="outage-check")
        consumer = reader.subscribe([RAW_CRYPTO_TICKS])
        items = drain(consumer, 300)
        consumer.close()
        reader.close()
        seqs = sorted(orjson.loads(value)["seq"] for _, value in items)
        ledger.record(
            "faults",
            "Kafka broker down at start and again mid-run (producer)",
            300,
            "300 messages, 0 duplicates",
            f"{len(set(seqs))} messages, {len(seqs) - len(set(seqs))} duplicates",
        )
        assert seqs == list(range(300))  # every message once: none lost, none duplicated
    finally:
        broker.stop()
