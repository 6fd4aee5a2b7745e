"""New anomalies, fanned out to every open dashboard (the server-sent event stream).

Two feeds fill the hub, chosen by how the app runs:
- inside `tickwatch run`, `follow_bus` reads the runtime's `market_anomalies` topic, so an
  anomaly reaches the browser the moment the engine emits it;
- alone (`tickwatch serve`, or another process writing the store), `poll_store` asks the store
  every second for anomalies detected since the last look.

Each client has a bounded queue; a client too slow to keep up loses its oldest events (it still
sees them in the alert table on its next refresh) rather than holding memory or the engine back.

Every event carries an id (its detection time and key, `event_id`). A browser reconnecting
after a drop sends the last id it saw as `Last-Event-ID`, and `missed` finds what was detected
after it in the store (at most REPLAY_LIMIT), so a reconnect loses no anomaly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import datetime

from tickwatch.bus import Bus
from tickwatch.model import MARKET_ANOMALIES, Anomaly
from tickwatch.web import paging
from tickwatch.web.models import AnomalyOut
from tickwatch.web.queries import Reader

log = logging.getLogger(__name__)

CLIENT_QUEUE = 1000
REPLAY_LIMIT = 500
Key = tuple[str, datetime, str]


def _key(a: AnomalyOut) -> Key:
    return (a.symbol, a.window_start, a.anomaly_type)


class Hub:
    """Fan-out of anomalies to subscribed clients on one event loop."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[AnomalyOut]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> asyncio.Queue[AnomalyOut]:
        queue: asyncio.Queue[AnomalyOut] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AnomalyOut]) -> None:
        self._clients.discard(queue)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, anomaly: AnomalyOut) -> None:
        """Deliver to every client; call on the hub's loop."""
        for queue in list(self._clients):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(anomaly)

    def publish_threadsafe(self, anomaly: AnomalyOut) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.publish, anomaly)


def event_id(anomaly: AnomalyOut) -> str:
    """The stream id of an anomaly: its place in detection order, opaque to clients."""
    a = anomaly
    return paging.encode(
        a.detected_at.isoformat(), a.symbol, a.window_start.isoformat(), a.anomaly_type
    )


def missed(reader: Reader, last_event_id: str) -> list[AnomalyOut]:
    """Anomalies detected after the one `last_event_id` names, oldest first (none if the id is
    not one of ours)."""
    try:
        after = tuple(paging.decode(last_event_id, (datetime, str, datetime, str)))
    except paging.BadCursor:
        return []
    rows = reader.anomalies_detected_since(after[0], REPLAY_LIMIT)
    return [a for a in rows if (a.detected_at, a.symbol, a.window_start, a.anomaly_type) > after]


def to_out(anomaly: Anomaly) -> AnomalyOut:
    return AnomalyOut.model_validate(anomaly.as_row())


async def poll_store(reader: Reader, hub: Hub, interval: float = 1.0) -> None:
    """Publish anomalies detected after start-up, polling the store every `interval` s.

    The cursor is the latest `detected_at` seen; rows detected at exactly the cursor are
    remembered by key so that a batch sharing one detection time is published once.
    """
    cursor = await asyncio.to_thread(reader.last_detected)
    initial = (
        [] if cursor is None else await asyncio.to_thread(reader.anomalies_detected_since, cursor)
    )
    seen = {_key(a) for a in initial if a.detected_at == cursor}
    while True:
        await asyncio.sleep(interval)
        try:
            fresh = await asyncio.to_thread(reader.anomalies_detected_since, cursor)
        except Exception:  # a locked or restarting store must not end the stream
            log.warning("live feed: store poll failed; retrying", exc_info=True)
            continue
        for anomaly in fresh:
            key = _key(anomaly)
            if anomaly.detected_at == cursor and key in seen:
                continue
            if cursor is None or anomaly.detected_at > cursor:
                cursor, seen = anomaly.detected_at, set()
            seen.add(key)
            hub.publish(anomaly)


def follow_bus(bus: Bus, hub: Hub, stop: threading.Event) -> threading.Thread:
    """A daemon thread that publishes every anomaly on the bus to the hub until `stop`."""
    consumer = bus.subscribe([MARKET_ANOMALIES])

    def run() -> None:
        try:
            while not stop.is_set():
                for _topic, value in consumer.poll(1000, 0.5):
                    if isinstance(value, Anomaly):
                        hub.publish_threadsafe(to_out(value))
        finally:
            consumer.close()

    thread = threading.Thread(target=run, name="web:live", daemon=True)
    thread.start()
    return thread
