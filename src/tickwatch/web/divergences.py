"""`/api/divergences`: cross-venue divergences (engine/divergence.py) for the API and the
dashboard's card, newest first. The rows are `Divergence` itself (FastAPI serialises the
dataclass), so the API cannot drift from the table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.engine.divergence import Divergence
from tickwatch.store.divergence_rows import divergence_from_row, divergences
from tickwatch.web.queries import Span

log = logging.getLogger(__name__)


def divergence_list(
    engine: Engine, span: Span, symbols: Sequence[str], limit: int
) -> list[Divergence]:
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
            return [divergence_from_row(r) for r in conn.execute(query)]
    except SQLAlchemyError:
        log.debug("no divergences table in the store", exc_info=True)
        return []
