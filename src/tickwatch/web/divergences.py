"""`/api/divergences`: cross-venue divergences (engine/divergence.py) for the API and the
dashboard's card, newest first."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.engine.divergence import VENUE_SEPARATOR
from tickwatch.store.divergence_rows import divergence_from_row, divergences
from tickwatch.web.queries import Span

log = logging.getLogger(__name__)


class DivergenceOut(BaseModel):
    symbol: str
    asset_type: str
    venues: list[str]
    started_at: datetime
    ended_at: datetime | None
    """Null while the venues still disagree."""
    max_bps: float
    max_at: datetime
    offender: str
    """The venue that looks off; empty when neither can be told."""
    kind: str
    """`data_fault` (one venue's data is wrong) or `dislocation` (a real price gap)."""
    summary: str


def divergence_list(
    engine: Engine, span: Span, symbols: Sequence[str], limit: int
) -> list[DivergenceOut]:
    """Divergences still open or ended since the range's start, newest start first (ticks
    run ahead of the newest closed window, so the range's end does not cut them); [] for a
    store written before the table existed (a read-only view cannot create it)."""
    c = divergences.c
    query = select(divergences).order_by(c.started_at.desc(), c.symbol, c.venues).limit(limit)
    if span.start is not None:
        query = query.where(or_(c.ended_at.is_(None), c.ended_at >= span.start))
    if symbols:
        query = query.where(c.symbol.in_(symbols))
    try:
        with engine.connect() as conn:
            found = [divergence_from_row(r) for r in conn.execute(query)]
    except SQLAlchemyError:
        log.debug("no divergences table in the store", exc_info=True)
        return []
    return [
        DivergenceOut(**{**d.as_row(), "venues": d.venues.split(VENUE_SEPARATOR)}) for d in found
    ]
