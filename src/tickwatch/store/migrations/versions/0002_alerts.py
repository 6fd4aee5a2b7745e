"""Alert episodes, market events, their notifications and the alert workflow.

Replaces the webhook log `alert_deliveries` (one row per anomaly notice, the seed's second
release) by `alert_notifications` (one row per alert notice): its rows move over as kind
`anomaly`, their text naming the anomaly type and window, so no delivery record is lost.
Tables a database already has (created before migrations existed) are left as they are.

Revision ID: 0002_alerts
Revises: 0001_seed
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_alerts"
down_revision = "0001_seed"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
TABLES = ("alerts", "market_events", "alert_notifications", "alert_actions", "alert_states")


def _key(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(32), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        _key("alert_id"),
        sa.Column("symbol", sa.Text, nullable=False),
        sa.Column("asset_type", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("last_window_start", TIME, nullable=False),
        sa.Column("closed_at", TIME),
        sa.Column("peak_severity", sa.Text),
        sa.Column("peak_abs_z", sa.Float, nullable=False),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("window_count", sa.Integer, nullable=False),
        sa.Column("market_event_id", sa.Text),
        sa.Column("summary", sa.Text, nullable=False),
        if_not_exists=True,
    )
    _index("ix_alerts_opened_at", "alerts", "opened_at")
    _index("ix_alerts_symbol_opened_at", "alerts", "symbol", "opened_at")
    _index("ix_alerts_market_event_id", "alerts", "market_event_id")

    op.create_table(
        "market_events",
        _key("event_id"),
        sa.Column("asset_type", sa.Text, nullable=False),
        sa.Column("window_start", TIME, nullable=False),
        sa.Column("last_window_start", TIME, nullable=False),
        sa.Column("symbols", sa.Integer, nullable=False),
        sa.Column("active_symbols", sa.Integer, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("median_move_pct", sa.Float),
        sa.Column("summary", sa.Text, nullable=False),
        if_not_exists=True,
    )
    _index("ix_market_events_window_start", "market_events", "window_start")

    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(32)),
        sa.Column("event_id", sa.String(32)),
        sa.Column("symbol", sa.String(64)),
        sa.Column("severity", sa.String(8)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("delivered_at", TIME, nullable=False),
        if_not_exists=True,
    )
    _index("ix_alert_notifications_delivered_at", "alert_notifications", "delivered_at")
    _move_alert_deliveries()

    op.create_table(
        "alert_actions",
        _key("action_id"),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("alert_id", sa.Text),
        sa.Column("silence_id", sa.Text),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        if_not_exists=True,
    )
    _index("ix_alert_actions_at", "alert_actions", "at")
    _index("ix_alert_actions_alert_id", "alert_actions", "alert_id")

    op.create_table(
        "alert_states",
        _key("alert_id"),
        sa.Column("status", sa.Text),
        sa.Column("status_by", sa.Text),
        sa.Column("status_at", TIME),
        sa.Column("verdict", sa.Text),
        sa.Column("verdict_by", sa.Text),
        sa.Column("verdict_at", TIME),
        sa.Column("snoozed_until", TIME),
        sa.Column("snoozed_by", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("updated_at", TIME, nullable=False),
        if_not_exists=True,
    )

    op.create_table(
        "silences",
        _key("silence_id"),
        sa.Column("symbol", sa.Text),
        sa.Column("kind", sa.Text),
        sa.Column("starts_at", TIME, nullable=False),
        sa.Column("ends_at", TIME, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("lifted_by", sa.Text),
        if_not_exists=True,
    )
    _index("ix_silences_ends_at", "silences", "ends_at")


def _move_alert_deliveries() -> None:
    if not sa.inspect(op.get_bind()).has_table("alert_deliveries"):
        return
    op.execute(
        "INSERT INTO alert_notifications (kind, symbol, severity, text, status, attempts,"
        " http_status, error, delivered_at)"
        " SELECT 'anomaly', symbol, severity,"
        " anomaly_type || ' at ' || to_char(window_start AT TIME ZONE 'UTC',"
        ' \'YYYY-MM-DD"T"HH24:MI:SS"Z"\'),'
        " status, attempts, http_status, error, delivered_at"
        " FROM alert_deliveries ORDER BY id"
    )
    op.drop_table("alert_deliveries")


def _index(name: str, table: str, *columns: str) -> None:
    op.create_index(name, table, list(columns), if_not_exists=True)


def downgrade() -> None:
    # alert_deliveries is not brought back: the seed (0001) never had it
    for table in ("silences", *reversed(TABLES)):
        op.drop_table(table)
