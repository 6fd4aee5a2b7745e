"""The alert workflow's tables, declared once: `alert_actions`, `alert_states`, `silences`.

What people do with alert episodes is kept apart from the episodes themselves: `alerts` rows
are rewritten by the alert stage while an episode grows (an upsert of every column), so a
person's acknowledgement written there would be lost on the next window. Instead:

- `alert_actions` is the audit: one row per write (who, what, when, alert or silence, note),
  never updated;
- `alert_states` holds the current state of one alert (key `alert_id`): its status
  (acknowledged or resolved), its verdict (true or false positive), its snooze, each with who
  set it and when;
- `silences` (key `silence_id`): a symbol and/or an alert kind or feature muted from `starts_at`
  to `ends_at` (wall time: a silence is a human action), lifted early by setting `ends_at`.

Every id is a 32-character hex text like the alert ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text
from sqlalchemy.types import TypeEngine

from tickwatch.store.sql import UtcDateTime, metadata

ALERT_ACTIONS = "alert_actions"
ALERT_STATES = "alert_states"
SILENCES = "silences"

# (name, type, nullable): the one declaration of each table's columns, key first
_TEXT, _TIME, _FLOAT, _INT = "text", "time", "float", "int"
ACTION_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("action_id", _TEXT, False),
    ("at", _TIME, False),
    ("actor", _TEXT, False),
    ("action", _TEXT, False),
    ("alert_id", _TEXT, True),
    ("silence_id", _TEXT, True),
    ("note", _TEXT, False),
    ("detail", _TEXT, False),
)
STATE_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("alert_id", _TEXT, False),
    ("status", _TEXT, True),
    ("status_by", _TEXT, True),
    ("status_at", _TIME, True),
    ("verdict", _TEXT, True),
    ("verdict_by", _TEXT, True),
    ("verdict_at", _TIME, True),
    ("snoozed_until", _TIME, True),
    ("snoozed_by", _TEXT, True),
    ("note", _TEXT, True),
    ("updated_at", _TIME, False),
)
SILENCE_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("silence_id", _TEXT, False),
    ("symbol", _TEXT, True),
    ("kind", _TEXT, True),
    ("starts_at", _TIME, False),
    ("ends_at", _TIME, False),
    ("created_by", _TEXT, False),
    ("note", _TEXT, False),
    ("lifted_by", _TEXT, True),
)
_SQL_TYPES: dict[str, type[TypeEngine[Any]] | TypeEngine[Any]] = {
    _TEXT: Text,
    _TIME: UtcDateTime,
    _FLOAT: Float,
    _INT: Integer,
}


def _columns(spec: Sequence[tuple[str, str, bool]]) -> list[Column[Any]]:
    key, *rest = spec
    return [Column(key[0], String(32), primary_key=True)] + [
        Column(name, _SQL_TYPES[kind], nullable=nullable) for name, kind, nullable in rest
    ]


alert_actions = Table(
    ALERT_ACTIONS,
    metadata,
    *_columns(ACTION_COLUMNS),
    Index("ix_alert_actions_at", "at"),
    Index("ix_alert_actions_alert_id", "alert_id"),
)
alert_states = Table(ALERT_STATES, metadata, *_columns(STATE_COLUMNS))
silences = Table(
    SILENCES, metadata, *_columns(SILENCE_COLUMNS), Index("ix_silences_ends_at", "ends_at")
)
WORKFLOW_TABLES = (alert_actions, alert_states, silences)
