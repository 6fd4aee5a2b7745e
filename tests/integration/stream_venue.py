"""A trading venue on loopback for the stream tests: a real `websockets` server that plays one
scripted session per connection, and REST trade endpoints that serve recorded rows.

A session is a list of steps: text is sent as one frame, `Pause(s)` waits, `DROP` aborts the
TCP connection with no close frame (a disconnect mid-stream). When the script ends the server
holds the connection open. Before playing, the server reads the subscribe messages the client
sends and keeps them, so tests can check the client resubscribed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

DROP = "<drop the connection>"


@dataclass(frozen=True)
class Pause:
    seconds: float


Step = str | bytes | Pause  # bytes go as a binary frame


class LoopbackVenue:
    def __init__(self, sessions: Sequence[Sequence[Step]], subscribe_messages: int = 1) -> None:
        self.sessions = sessions
        self.subscribe_messages = subscribe_messages
        self.subscriptions: list[list[str]] = []  # per connection, what the client sent first
        self.paths: list[str] = []
        self.sent = 0
        self.played = threading.Event()  # every scripted session has been played
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stopped: asyncio.Event | None = None

    def __enter__(self) -> LoopbackVenue:
        self._thread.start()
        ready = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        port = ready.result(10)
        self.url = f"ws://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        assert self._stopped is not None
        self._loop.call_soon_threadsafe(self._stopped.set)
        time.sleep(0.1)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> int:
        self._stopped = asyncio.Event()
        ready: asyncio.Future[int] = self._loop.create_future()
        self._loop.create_task(self._serve(ready))
        return await ready

    async def _serve(self, ready: asyncio.Future[int]) -> None:
        assert self._stopped is not None
        async with serve(self._session, "127.0.0.1", 0, ping_interval=None) as server:
            ready.set_result(server.sockets[0].getsockname()[1])
            await self._stopped.wait()

    async def _session(self, socket: ServerConnection) -> None:
        index = len(self.subscriptions)
        self.subscriptions.append([])
        assert socket.request is not None
        self.paths.append(socket.request.path)
        for _ in range(self.subscribe_messages):
            self.subscriptions[index].append(str(await socket.recv()))
        for step in self.sessions[index] if index < len(self.sessions) else ():
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif step == DROP:
                socket.transport.abort()
                return
            else:
                await socket.send(step)
                self.sent += 1
        if index >= len(self.sessions) - 1:
            self.played.set()
        await socket.wait_closed()


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> None:
    """Poll `condition` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)
