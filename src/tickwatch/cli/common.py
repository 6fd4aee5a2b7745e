"""What every command shares: settings read once (logging set up, secrets masked),
the data dir's writer lock, the store a reading command opens, and Ctrl+C."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.logging import RichHandler

from tickwatch.cli.errors import exits_on_error, fail, mask_in_errors
from tickwatch.cli.render import console

if TYPE_CHECKING:  # type annotations only: each command imports what it runs in its body
    from tickwatch.config import Settings


DataDir = Annotated[
    Path | None,
    typer.Option(
        help="Folder for the SQLite store and Parquet lake [env DATA_DIR, default ./data]"
    ),
]
KafkaServers = Annotated[
    str | None, typer.Option(help="Kafka bootstrap host:port [KAFKA_BOOTSTRAP_SERVERS]")
]
TopicPrefix = Annotated[str, typer.Option(help="Prefix of the Kafka topic names")]


class _MaskSecrets(logging.Filter):
    """Replaces configured secrets in every log line (a URL with a key, an error message)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and self.secrets:  # a traceback carries the exception's message
            trace = logging.Formatter().formatException(record.exc_info)
            if any(secret in trace for secret in self.secrets):
                message, record.exc_info, record.exc_text = f"{message}\n{trace}", None, None
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def setup_logging(level: str, secrets: list[str] | None = None) -> None:
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=True)
    handler.addFilter(_MaskSecrets(secrets or []))
    logging.basicConfig(
        level=level, format="%(message)s", datefmt="%H:%M:%S", handlers=[handler], force=True
    )


def read_settings(**overrides: Any) -> Settings:
    from tickwatch.config import load_settings
    from tickwatch.extras import require

    with exits_on_error():
        settings = load_settings(**overrides)
        if settings.bus == "kafka":
            require("kafka", "BUS=kafka")
    setup_logging(settings.log_level, settings.secret_values())
    mask_in_errors(settings.secret_values())
    return settings


def lock_data_dir(folder: Path, command: str) -> None:
    """Hold the data dir's writer lock (store/lock.py) while this process lives."""
    from tickwatch.store.lock import hold

    with exits_on_error():
        hold(folder, command)


def existing_store(settings: Settings) -> Settings:
    """The settings of the store `tickwatch run` wrote, never creating one.

    A simulated run keeps its data in DATA_DIR/simulated: when DATA_DIR holds no store but
    that folder does, use it (and say so). No store at all: exit 2 naming both places, before
    anything opens a connection (opening an SQLite URL creates an empty database)."""
    from tickwatch.runtime import SIMULATED_DIR

    if settings.store_url is not None:
        return settings
    db = Path(settings.database_url.removeprefix("sqlite:///"))
    if db.is_file():
        return settings
    simulated = settings.data_dir / SIMULATED_DIR
    if settings.data_dir.name != SIMULATED_DIR and (simulated / db.name).is_file():
        console.print(f"no store at {db}; using the simulated run's store in {simulated}")
        return settings.model_copy(update={"data_dir": simulated})
    fail(
        f"no store at {db} (nor in {simulated}): run `tickwatch run` or "
        "`tickwatch replay` first, or set DATA_DIR (or STORE_URL) to the store to use"
    )


def graceful_stop() -> threading.Event:
    """First SIGINT/SIGTERM asks for a clean stop; a second one exits at once."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
