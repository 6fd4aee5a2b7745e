"""The `provenance` table: which sources wrote this store, and whether any of them is simulated.

Whether a store holds synthetic data used to be read from its folder's name (DATA_DIR/simulated),
so simulator output replayed into any other folder showed no SIMULATED banner. The writers
(`tickwatch run` with its embedded engine, `tickwatch replay`) now record each source whose
ticks they stored, one row per source name: `kind` is `simulated` for the simulator
(`sources.simulate.SOURCE_NAME`) and `live` otherwise. A store is simulated when any row says
so; the web app's /api/meta and /health read it, so the banner follows the data.

The table is tiny and append-only (a source name is recorded once, with the first time seen).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Column, Engine, String, Table, select
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.model import SIMULATED_SOURCE as SIMULATOR
from tickwatch.store.sql import UtcDateTime, metadata

log = logging.getLogger(__name__)

PROVENANCE = "provenance"
SIMULATED = "simulated"
LIVE = "live"
SIMULATED_SOURCES = frozenset({SIMULATOR})

provenance = Table(
    PROVENANCE,
    metadata,
    Column("source", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # simulated or live
    Column("first_seen", UtcDateTime, nullable=False),
)


def kind_of(source: str) -> str:
    return SIMULATED if source in SIMULATED_SOURCES else LIVE


def record(engine: Engine, sources: Iterable[str], now: datetime | None = None) -> None:
    """Note that ticks of `sources` were stored (idempotent; creates the table if needed)."""
    names = sorted({s for s in sources if s})
    if not names:
        return
    at = now or datetime.now(UTC)
    provenance.create(engine, checkfirst=True)
    with engine.begin() as conn:
        known = set(conn.execute(select(provenance.c.source)).scalars())
        rows = [
            {"source": name[:64], "kind": kind_of(name), "first_seen": at}
            for name in names
            if name[:64] not in known
        ]
        if rows:
            conn.execute(provenance.insert(), rows)
            log.info("store provenance: %s", ", ".join(f"{r['source']} {r['kind']}" for r in rows))


def sources(engine: Engine) -> dict[str, str]:
    """Source name -> kind for every source recorded; {} when none (or no table yet: a store
    written before provenance existed, or a read-only view of one)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(provenance.c.source, provenance.c.kind)).all()
        return {str(source): str(kind) for source, kind in rows}
    except SQLAlchemyError:
        log.debug("no provenance table in the store", exc_info=True)
        return {}


def is_simulated(engine: Engine) -> bool:
    """True when any recorded source is simulated."""
    return SIMULATED in sources(engine).values()
