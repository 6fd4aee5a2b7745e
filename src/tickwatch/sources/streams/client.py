"""One WebSocket feed read on its own thread into a bounded inbox.

The reader never waits for the consumer: each frame goes into the `Inbox` at once, and when the
inbox is full the frame is dropped, counted and kept (up to `KEPT_DROPS`) so the consumer turns
it into a dead letter; the venue's trade ids then show the hole and the consumer backfills it.

Lifecycle: connect, send the venue's subscribe messages, read. Any failure (refused, closed,
no frame for `idle_timeout` seconds from a venue that heartbeats every second or so) ends the
connection (a venue that only pings, Binance, has no idle timeout: a missing pong ends it); the
reader waits `min(backoff_max, backoff_base * 2**attempt)` scaled by a random factor in
[0.5, 1) (jitter, so many clients do not reconnect in step), then connects and subscribes
again. Every connection after the first puts a `Reconnected` marker in the inbox, in order
with the frames, so the consumer knows where the feed had a hole. websockets' own ping keeps
the connection checked when the venue is quiet.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

log = logging.getLogger(__name__)

KEPT_DROPS = 1000  # dropped frames kept for dead letters; beyond, only counted


@dataclass(frozen=True, slots=True)
class Frame:
    """One received message and when it arrived (`time.time()`, for latency)."""

    text: str
    received: float


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The feed was down from `lost` to `back` (epoch seconds): trades may be missing."""

    lost: float
    back: float


class Inbox:
    """A bounded, thread-safe queue of frames that refuses instead of blocking when full.

    Markers (`Reconnected`) always go in: they are few and the consumer needs every one.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[Frame | Reconnected] = deque()
        self._frames = 0
        self._ready = threading.Condition()

    def put(self, frame: Frame) -> bool:
        with self._ready:
            if self._frames >= self.capacity:
                return False
            self._items.append(frame)
            self._frames += 1
            self._ready.notify()
            return True

    def mark(self, marker: Reconnected) -> None:
        with self._ready:
            self._items.append(marker)
            self._ready.notify()

    def take(self, limit: int, timeout: float) -> list[Frame | Reconnected]:
        """Up to `limit` items, waiting at most `timeout` seconds for the first one."""
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            items: list[Frame | Reconnected] = []
            while self._items and len(items) < limit:
                item = self._items.popleft()
                if isinstance(item, Frame):
                    self._frames -= 1
                items.append(item)
            return items

    def __len__(self) -> int:
        return self._frames


@dataclass
class FeedStats:
    """The reader's health counters (read by the source's health figures)."""

    connected: bool = False
    connections: int = 0
    reconnects: int = 0
    drops: int = 0
    last_message: float | None = None
    last_error: str = ""


class FeedReader:
    """Reads `url` on a daemon thread until `close()`; frames go to `inbox`."""

    def __init__(
        self,
        url: str,
        subscribe: Callable[[], Sequence[str]],
        inbox: Inbox,
        *,
        label: str = "",
        idle_timeout: float | None = 30.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        ping_interval: float | None = 20.0,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.label = label or url  # what logs show: a url may carry a key
        self.subscribe = subscribe
        self.inbox = inbox
        self.idle_timeout = idle_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.ping_interval = ping_interval
        self.open_timeout = open_timeout
        self.stats = FeedStats()
        self.dropped: deque[Frame] = deque(maxlen=KEPT_DROPS)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = threading.Event()

    def start(self) -> None:
        """Start reading (again after `close`, as when a supervisor restarts the source)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._closing.clear()
        self._thread = threading.Thread(target=self._main, name=f"feed {self.label}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._run())
            if self._closing.is_set():
                self._task.cancel()
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()

    def backoff(self, attempt: int) -> float:
        """Seconds before reconnect `attempt` (0-based): exponential, capped, jittered."""
        cap: float = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return cap * (0.5 + random.random() / 2)

    async def _run(self) -> None:
        attempt = 0
        lost: float | None = None
        while not self._closing.is_set():
            try:
                async with connect(
                    self.url,
                    open_timeout=self.open_timeout,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_interval,
                    close_timeout=2,
                    max_size=2**23,
                ) as socket:
                    for request in self.subscribe():
                        await socket.send(request)
                    self.stats.connected = True
                    self.stats.connections += 1
                    if lost is not None:
                        self.stats.reconnects += 1
                        self.inbox.mark(Reconnected(lost, time.time()))
                    log.info("connected to %s", self.label)
                    while True:
                        message = await asyncio.wait_for(socket.recv(), self.idle_timeout)
                        now = time.time()
                        attempt = 0  # a frame arrived: the venue serves, start over
                        self.stats.last_message = now
                        if isinstance(message, bytes):
                            message = message.decode("utf-8", "replace")
                        frame = Frame(message, now)
                        if not self.inbox.put(frame):
                            self.dropped.append(frame)
                            self.stats.drops += 1
            except TimeoutError:
                self.stats.last_error = f"no message for {self.idle_timeout:g}s"
            except (OSError, WebSocketException) as exc:
                # the label, never the url, which may carry a key in its query
                text = str(exc).replace(self.url, self.label)
                self.stats.last_error = f"{type(exc).__name__}: {text}"[:200]
            finally:  # also when close() cancels the read
                if self.stats.connected:
                    lost = time.time()
                self.stats.connected = False
            if self._closing.is_set():
                return
            wait = self.backoff(attempt)
            attempt += 1
            log.warning(
                "%s: %s; reconnecting in %.1fs", self.label, self.stats.last_error or "closed", wait
            )
            await asyncio.sleep(wait)
