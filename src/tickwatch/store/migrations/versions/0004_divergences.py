"""Cross-venue divergences, keyed (symbol, venues, started_at).

Revision ID: 0004_divergences
Revises: 0003_provenance
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_divergences"
down_revision = "0003_provenance"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "divergences",
        sa.Column("symbol", sa.String(64), primary_key=True),
        sa.Column("venues", sa.String(160), primary_key=True),
        sa.Column("started_at", TIME, primary_key=True),
        sa.Column("asset_type", sa.String(16), nullable=False),
        sa.Column("ended_at", TIME),
        sa.Column("max_bps", sa.Float, nullable=False),
        sa.Column("max_at", TIME, nullable=False),
        sa.Column("offender", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_divergences_started_at", "divergences", ["started_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("divergences")
