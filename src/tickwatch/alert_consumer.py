"""Distributed alerts: the alert stage as a consumer of the `clean_market_data` topic.

In distributed mode the Spark job closes windows and publishes them on `clean_market_data`
(keyed by symbol, so each symbol's windows stay in order). `tickwatch alerts` runs the same
alert stage as the embedded pipeline on them (`tickwatch.alerting`), upserts `alerts` and
`market_events` into STORE_URL (PostgreSQL) and publishes alert, event and notice messages
on `market_alerts`. The same windows in the same order give the same alerts as `replay`.

Restarts: the engine state is rebuilt from the store's recent windows (ALERT_RESTORE_WINDOWS
per symbol), then consumption resumes at the group's committed offsets (group
`tickwatch-alerts`, at least once). A window that arrives again (a re-delivered batch, or one
the warm start already judged) is skipped by the engine, so nothing is judged twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from tickwatch.alerting import AlertStage
from tickwatch.bus import Bus
from tickwatch.engine.alert_score import Bar
from tickwatch.model import CLEAN_MARKET_DATA, AssetType

log = logging.getLogger(__name__)

GROUP = "tickwatch-alerts"


def bar_from_message(value: object) -> Bar | None:
    """A `clean_market_data` row (JSON bytes or a mapping) as a `Bar`; None if unreadable."""
    row: object = value
    if isinstance(value, bytes | bytearray):
        try:
            row = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(row, Mapping):
        return None
    try:
        start = row["window_start"]
        moment = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
        return Bar(
            symbol=str(row["symbol"]),
            asset_type=AssetType(row["asset_type"]),
            window_start=moment,
            open=float(row["open"]),
            high=float(row["high"]),
            low=float(row["low"]),
            close=float(row["close"]),
            volume=None if row.get("volume") is None else float(row["volume"]),
            tick_count=int(row["tick_count"]),
            volatility=None if row.get("volatility") is None else float(row["volatility"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def consume(
    stage: AlertStage,
    bus: Bus,
    stop: threading.Event,
    idle_seconds: float | None = None,
    batch: int = 5000,
) -> int:
    """Judge windows from `clean_market_data` until `stop` is set (or nothing arrives for
    `idle_seconds`); returns the number of windows read. Unreadable messages are counted and
    logged, never fatal."""
    consumer = bus.subscribe([CLEAN_MARKET_DATA])
    seen = unreadable = 0
    last = time.monotonic()
    try:
        while not stop.is_set():
            items = consumer.poll(batch, 0.5)
            if not items:
                if idle_seconds is not None and time.monotonic() - last > idle_seconds:
                    break
                continue
            last = time.monotonic()
            bars = [bar_from_message(value) for _, value in items]
            good = [b for b in bars if b is not None]
            unreadable += len(bars) - len(good)
            seen += len(good)
            stage.observe_bars(good)
    finally:
        consumer.close()
    if unreadable:
        log.warning("%d clean_market_data messages were unreadable and skipped", unreadable)
    return seen


def describe(stage: AlertStage) -> dict[str, Any]:
    opened = stage.engine.opened
    return {
        "opened": opened["market"],
        "market_events": stage.events,
        "faults": opened["data_fault"],
    }
