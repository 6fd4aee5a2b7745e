"""The live hub: fan-out, a slow client loses its oldest events, the bus feed."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from tickwatch.bus.memory import MemoryBus
from tickwatch.model import MARKET_ANOMALIES, Anomaly, AnomalyType, AssetType, Severity
from tickwatch.web import live
from tickwatch.web.live import Hub, follow_bus, to_out

T0 = datetime(2024, 3, 4, 10, tzinfo=UTC)


def anomaly(minute: int) -> Anomaly:
    start = T0 + timedelta(minutes=minute)
    return Anomaly(
        "AAPL", AssetType.STOCK, start, start + timedelta(minutes=5), AnomalyType.PRICE_SPIKE,
        2.0, 0.0, 0.5, 4.0, Severity.MEDIUM, T0,
    )  # fmt: skip


def test_every_client_gets_every_anomaly() -> None:
    async def scenario() -> None:
        hub = Hub()
        a, b = hub.subscribe(), hub.subscribe()
        hub.publish(to_out(anomaly(0)))
        assert (await a.get()).window_start == T0
        assert (await b.get()).window_start == T0
        hub.unsubscribe(a)
        assert hub.clients == 1

    asyncio.run(scenario())


def test_a_full_client_queue_drops_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "CLIENT_QUEUE", 2)

    async def scenario() -> None:
        hub = Hub()
        queue = hub.subscribe()
        for minute in (0, 5, 10):
            hub.publish(to_out(anomaly(minute)))
        got = [(await queue.get()).window_start for _ in range(2)]
        assert got == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)]

    asyncio.run(scenario())


def test_follow_bus_forwards_anomalies_from_the_runtime_bus() -> None:
    async def scenario() -> None:
        hub = Hub()
        hub.bind(asyncio.get_running_loop())
        queue = hub.subscribe()
        bus = MemoryBus()
        stop = threading.Event()
        thread = follow_bus(bus, hub, stop)
        bus.publish(MARKET_ANOMALIES, "AAPL", "not an anomaly")
        bus.publish(MARKET_ANOMALIES, "AAPL", anomaly(5))
        got = await asyncio.wait_for(queue.get(), 5)
        stop.set()
        await asyncio.to_thread(thread.join, 5)
        assert (got.symbol, got.window_start, got.z_score) == (
            "AAPL",
            T0 + timedelta(minutes=5),
            4.0,
        )
        assert queue.empty()

    asyncio.run(scenario())
