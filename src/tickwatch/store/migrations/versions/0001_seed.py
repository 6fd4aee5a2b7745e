"""Baseline: the seed's schema (the first storage/init.sql): windows, anomalies, dead letters.

Databases created before migrations existed (by the store's create_all or by init.sql) carry
no version, so the revisions that stand for that history create only what is missing
(`if_not_exists`) and such a database upgrades from the start like an empty one.

Revision ID: 0001_seed
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION

revision = "0001_seed"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
FEATURES = ("price_return_pct", "volume", "volatility")


def upgrade() -> None:
    op.create_table(
        "clean_market_data",
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("window_start", TIME, primary_key=True),
        sa.Column("window_end", TIME, nullable=False),
        sa.Column("asset_type", sa.String(8), nullable=False),
        sa.Column("open", DOUBLE_PRECISION, nullable=False),
        sa.Column("high", DOUBLE_PRECISION, nullable=False),
        sa.Column("low", DOUBLE_PRECISION, nullable=False),
        sa.Column("close", DOUBLE_PRECISION, nullable=False),
        sa.Column("volume", DOUBLE_PRECISION),
        sa.Column("tick_count", sa.Integer, nullable=False),
        sa.Column("vwap", DOUBLE_PRECISION),
        sa.Column("price_return_pct", DOUBLE_PRECISION, nullable=False),
        sa.Column("volatility", DOUBLE_PRECISION),
        *(
            sa.Column(f"{feature}_{stat}", DOUBLE_PRECISION)
            for feature in FEATURES
            for stat in ("mean", "std", "z")
        ),
        if_not_exists=True,
    )
    _index("ix_clean_window_start", "clean_market_data", "window_start")
    _index("ix_clean_asset_type_window_start", "clean_market_data", "asset_type", "window_start")

    op.create_table(
        "market_anomalies",
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("window_start", TIME, primary_key=True),
        sa.Column("anomaly_type", sa.String(24), primary_key=True),
        sa.Column("window_end", TIME, nullable=False),
        sa.Column("asset_type", sa.String(8), nullable=False),
        sa.Column("value", DOUBLE_PRECISION, nullable=False),
        sa.Column("mean", DOUBLE_PRECISION, nullable=False),
        sa.Column("std", DOUBLE_PRECISION, nullable=False),
        sa.Column("z_score", DOUBLE_PRECISION, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("detected_at", TIME, nullable=False),
        if_not_exists=True,
    )
    _index("ix_anomalies_window_start", "market_anomalies", "window_start")
    _index("ix_anomalies_detected_at", "market_anomalies", "detected_at")
    _index("ix_anomalies_type_window_start", "market_anomalies", "anomaly_type", "window_start")
    _index("ix_anomalies_severity_window_start", "market_anomalies", "severity", "window_start")

    op.create_table(
        "dead_letters",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("source", sa.String(64)),
        sa.Column("symbol", sa.String(64)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        if_not_exists=True,
    )
    _index("ix_dead_letters_received_at", "dead_letters", "received_at")


def _index(name: str, table: str, *columns: str) -> None:
    op.create_index(name, table, list(columns), if_not_exists=True)


def downgrade() -> None:
    for table in ("dead_letters", "market_anomalies", "clean_market_data"):
        op.drop_table(table)
