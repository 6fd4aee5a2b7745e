"""The `alerts` and `market_events` tables, declared once: SQL tables and lake schemas derived.

One row per alert episode (key `alert_id`) and per market-wide event (key `event_id`); an
episode is rewritten while it grows and once more when it closes, so every write is an upsert
and the lake keeps the latest write per key (DESIGN.md "Alerts", docs/DETECTION.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import Column, Float, Index, Integer, String, Table, Text
from sqlalchemy.types import TypeEngine

from tickwatch.store.sql import UtcDateTime, metadata

ALERTS = "alerts"
MARKET_EVENTS = "market_events"

# (name, type, nullable): the one declaration of each table's columns, key first
_TEXT, _TIME, _FLOAT, _INT = "text", "time", "float", "int"
ALERT_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("alert_id", _TEXT, False),
    ("symbol", _TEXT, False),
    ("asset_type", _TEXT, False),
    ("kind", _TEXT, False),
    ("opened_at", _TIME, False),
    ("last_window_start", _TIME, False),
    ("closed_at", _TIME, True),
    ("peak_severity", _TEXT, True),
    ("peak_abs_z", _FLOAT, False),
    ("features", _TEXT, False),
    ("direction", _TEXT, False),
    ("window_count", _INT, False),
    ("market_event_id", _TEXT, True),
    ("summary", _TEXT, False),
)
EVENT_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("event_id", _TEXT, False),
    ("asset_type", _TEXT, False),
    ("window_start", _TIME, False),
    ("last_window_start", _TIME, False),
    ("symbols", _INT, False),
    ("active_symbols", _INT, False),
    ("direction", _TEXT, False),
    ("median_move_pct", _FLOAT, True),
    ("summary", _TEXT, False),
)
_SQL_TYPES: dict[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    _TEXT: Text,
    _TIME: UtcDateTime,
    _FLOAT: Float,
    _INT: Integer,
}
_ARROW_TYPES = {
    _TEXT: pa.string(),
    _TIME: pa.timestamp("us", tz="UTC"),
    _FLOAT: pa.float64(),
    _INT: pa.int64(),
}


def _columns(spec: Sequence[tuple[str, str, bool]]) -> list[Column[Any]]:
    key, *rest = spec
    return [Column(key[0], String(32), primary_key=True)] + [
        Column(name, _SQL_TYPES[kind], nullable=nullable) for name, kind, nullable in rest
    ]


def arrow_schema(spec: Sequence[tuple[str, str, bool]]) -> pa.Schema:
    return pa.schema([pa.field(n, _ARROW_TYPES[k], nullable=null) for n, k, null in spec])


alerts = Table(
    ALERTS,
    metadata,
    *_columns(ALERT_COLUMNS),
    Index("ix_alerts_opened_at", "opened_at"),
    Index("ix_alerts_symbol_opened_at", "symbol", "opened_at"),
    Index("ix_alerts_market_event_id", "market_event_id"),
)
market_events = Table(
    MARKET_EVENTS,
    metadata,
    *_columns(EVENT_COLUMNS),
    Index("ix_market_events_window_start", "window_start"),
)

LAKE_SCHEMAS = {ALERTS: arrow_schema(ALERT_COLUMNS), MARKET_EVENTS: arrow_schema(EVENT_COLUMNS)}
LAKE_KEYS = {ALERTS: ("alert_id",), MARKET_EVENTS: ("event_id",)}
LAKE_PARTITION_BY = {ALERTS: "opened_at", MARKET_EVENTS: "window_start"}
