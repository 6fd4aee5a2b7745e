"""Quieter Kafka logs: what the producer did is counted, and an outage is reported, not echoed.

- `tickwatch run` with BUS=kafka only produces: its status line counts the ticks it published
  (it used to show the embedded engine's counters, "ticks 0").
- A broker that does not answer is one WARNING from the bus, however long it lasts; the client
  library's own lines (one per refused connection, logged at ERROR before) go to DEBUG and are
  counted for the summary; an undelivered buffer at close is one ERROR with the count.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.services import KafkaBroker
from tickwatch.bus.kafka import KafkaBus
from tickwatch.config import load_settings
from tickwatch.model import RAW_CRYPTO_TICKS
from tickwatch.runtime import Runtime
from tickwatch.sources.replay import ReplaySource

FAST_RECONNECT = {"reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200}


@pytest.mark.kafka
def test_kafka_mode_status_line_counts_published_ticks(tmp_path: Path, kafka_bootstrap: str):
    from tickwatch.cli.render import status_line

    source = f"status-{uuid.uuid4().hex[:8]}"
    start = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    lines = [
        orjson.dumps(
            {
                "source": source,
                "asset_type": "crypto",
                "symbol": "bitcoin",
                "event_time": (start + timedelta(seconds=20 * i)).isoformat(),
                "price": 100.0 + i,
            }
        )
        for i in range(12)
    ]
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_bytes(b"\n".join(lines) + b"\n")
    settings = load_settings(
        bus="kafka", kafka_bootstrap_servers=kafka_bootstrap, data_dir=tmp_path / "data"
    )
    runtime = Runtime(settings, [ReplaySource([ticks])])
    runtime.start()
    deadline = time.monotonic() + 60
    while not runtime.sources_finished() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        line = status_line(runtime.processor.counters, runtime)
    finally:
        runtime.shutdown()
    assert "published 12 ticks to Kafka" in line
    assert "ticks 0" not in line


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_broker_is_one_warning_not_a_flood(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="tickwatch.bus.kafka")
    bootstrap = f"127.0.0.1:{_free_port()}"  # nothing listens there
    bus = KafkaBus(bootstrap, client_config=FAST_RECONNECT, start_timeout=1)
    for seq in range(5):
        bus.publish(RAW_CRYPTO_TICKS, "bitcoin", {"seq": seq})
    time.sleep(4)  # ~20 refused connections at a 200 ms backoff
    during = list(caplog.records)
    bus.close(timeout=0.5)
    mine = [r for r in caplog.records if r.name == "tickwatch.bus.kafka"]
    errors = [r.getMessage() for r in mine if r.levelno >= logging.ERROR]
    warnings = [r.getMessage() for r in during if r.levelno == logging.WARNING]
    client = [r for r in during if r.levelno == logging.DEBUG and "Connect to" in r.getMessage()]
    assert len(client) >= 3  # the client's lines are kept, at DEBUG
    assert sum("unreachable" in m for m in warnings) == 1
    assert len(warnings) == 2  # the topics could not be created, the broker is unreachable
    assert len(errors) == 1 and "5 messages undelivered" in errors[0]


@pytest.mark.kafka
def test_a_broker_outage_is_one_warning_and_one_summary(caplog: pytest.LogCaptureFixture):
    broker = KafkaBroker()  # its own broker: this test stops it
    bootstrap = broker.start()
    try:
        bus = KafkaBus(bootstrap, client_config=FAST_RECONNECT, start_timeout=30)
        bus.publish(RAW_CRYPTO_TICKS, "bitcoin", {"seq": -1})
        assert bus.flush(30) == 0
        caplog.set_level(logging.DEBUG, logger="tickwatch.bus.kafka")
        caplog.clear()
        broker.stop(keep=True)
        for seq in range(50):
            bus.publish(RAW_CRYPTO_TICKS, "bitcoin", {"seq": seq})
        time.sleep(3)  # refused reconnects every <= 200 ms
        assert bus.flush(1) == 50
        broker.start()  # same port, same data
        assert bus.flush(60) == 0
        bus.close()
        loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
        messages = [r.getMessage() for r in loud]
        assert [r for r in loud if r.levelno >= logging.ERROR] == []
        assert sum("unreachable" in m for m in messages) == 1
        summary = [m for m in messages if "reachable again" in m]
        assert len(summary) == 1 and "client errors" in summary[0]
        assert len(messages) == 2, messages
    finally:
        broker.stop()
