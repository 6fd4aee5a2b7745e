"""The web dashboard and JSON API (FastAPI), served by `tickwatch run` and `tickwatch serve`."""

from tickwatch.web.app import create_app
from tickwatch.web.server import WebServer

__all__ = ["WebServer", "create_app"]
