"""Message buses: one protocol, an in-process queue (embedded) and Kafka (distributed).

`tickwatch.bus.kafka` needs the `kafka` extra (confluent-kafka); nothing imports it unless
BUS=kafka (`runtime.open_bus`) or the Spark job runs, so the core install never loads it.
"""

from __future__ import annotations

from typing import Any, Protocol


class Consumer(Protocol):
    def poll(self, max_records: int, timeout: float) -> list[tuple[str, Any]]:
        """Up to `max_records` (topic, value) pairs, waiting at most `timeout` seconds."""
        ...

    def close(self) -> None: ...


class Bus(Protocol):
    def publish(self, topic: str, key: str, value: Any) -> None: ...

    def subscribe(self, topics: list[str]) -> Consumer: ...

    def close(self) -> None: ...
