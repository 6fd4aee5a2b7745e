"""uvicorn in a background thread, so the runtime can supervise the dashboard like any task.

uvicorn calls `sys.exit` when it cannot bind its port; in a thread that would end the task
silently, so it is turned into `WebError` and the supervisor records it and retries.
"""

from __future__ import annotations

import logging
import time

import uvicorn
from fastapi import FastAPI

from tickwatch.errors import TickwatchError

log = logging.getLogger(__name__)


class WebError(TickwatchError):
    """The web server could not start (usually: the port is taken)."""


class WebServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        port = self.port
        if self.server.started and self.server.servers:
            port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}"

    def wait_started(self, timeout: float = 5.0) -> bool:
        """Block until the socket listens (so `url` shows the real port when WEB_PORT=0)."""
        deadline = time.monotonic() + timeout
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(self.server.started)

    def run(self) -> None:
        """Serve until `stop()`; blocking (call it in a thread or as the main loop)."""
        self.server.should_exit = False
        try:
            self.server.run()
        except SystemExit as exc:
            raise WebError(
                f"web server could not listen on {self.host}:{self.port} (exit {exc.code}); "
                "set WEB_PORT to a free port"
            ) from None

    def stop(self) -> None:
        self.server.should_exit = True
