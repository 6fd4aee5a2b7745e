"""The in-process bus: a bounded queue per subscription, fanned out by topic.

Values travel as Python objects (no serialisation). A full queue blocks the publisher, so a
slow consumer slows the sources down instead of growing memory without bound.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import Any


class MemoryConsumer:
    def __init__(self, bus: MemoryBus, capacity: int) -> None:
        self._bus = bus
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(capacity)

    def poll(self, max_records: int, timeout: float) -> list[tuple[str, Any]]:
        try:
            items = [self.queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(items) < max_records:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return items

    def close(self) -> None:
        self._bus.unsubscribe(self)


class MemoryBus:
    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[MemoryConsumer]] = defaultdict(list)

    def publish(self, topic: str, key: str, value: Any) -> None:
        with self._lock:
            targets = list(self._subscribers.get(topic, ()))
        for consumer in targets:
            consumer.queue.put((topic, value))

    def subscribe(self, topics: list[str]) -> MemoryConsumer:
        consumer = MemoryConsumer(self, self.capacity)
        with self._lock:
            for topic in topics:
                self._subscribers[topic].append(consumer)
        return consumer

    def unsubscribe(self, consumer: MemoryConsumer) -> None:
        with self._lock:
            for consumers in self._subscribers.values():
                if consumer in consumers:
                    consumers.remove(consumer)

    def close(self) -> None:
        with self._lock:
            self._subscribers.clear()
