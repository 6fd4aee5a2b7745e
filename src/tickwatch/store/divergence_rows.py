"""The `divergences` table: one row per flagged cross-venue divergence (engine/divergence.py).

Key `(symbol, venues, started_at)`: a divergence is written when it is flagged, again when its
widest gap grows and once more when it ends, each time an upsert on the key, so a replay or a
restart (which resumes the open ones, `open_divergences`) never stores one twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Engine, Float, Index, String, Table, Text, select

from tickwatch.engine.divergence import Divergence
from tickwatch.model import AssetType
from tickwatch.store.sql import UtcDateTime, metadata

DIVERGENCES = "divergences"

divergences = Table(
    DIVERGENCES,
    metadata,
    Column("symbol", String(64), primary_key=True),
    Column("venues", String(160), primary_key=True),  # "a|b", sorted
    Column("started_at", UtcDateTime, primary_key=True),
    Column("asset_type", String(16), nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),  # null while it lasts
    Column("max_bps", Float, nullable=False),
    Column("max_at", UtcDateTime, nullable=False),
    Column("offender", String(80), nullable=False),  # the venue that looks off, or ''
    Column("kind", String(16), nullable=False),  # data_fault | dislocation
    Column("summary", Text, nullable=False),
    Index("ix_divergences_started_at", "started_at"),
)


def divergence_from_row(row: Any) -> Divergence:
    return Divergence(
        symbol=row.symbol,
        venues=row.venues,
        started_at=row.started_at,
        asset_type=AssetType(row.asset_type),
        ended_at=row.ended_at,
        max_bps=row.max_bps,
        max_at=row.max_at,
        offender=row.offender,
        kind=row.kind,
        summary=row.summary,
    )


def open_divergences(engine: Engine) -> list[Divergence]:
    """The divergences still open in the store (to resume after a restart)."""
    query = select(divergences).where(divergences.c.ended_at.is_(None))
    with engine.connect() as conn:
        return [divergence_from_row(r) for r in conn.execute(query)]
