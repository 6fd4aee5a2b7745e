"""The store as the web app sees it: read, never written.

The app normally opens the store like every writer (`SqlStore`: tables created if missing, so
an empty data dir shows an empty dashboard). A SQLite store on a read-only data dir (a mounted
snapshot, a backup, a container volume mounted `:ro`) cannot be opened that way: SQLite needs
to create its `-wal`/`-shm` files next to the database. Then the file is opened read-only with
`immutable=1` (SQLite reads the main file only, takes no locks), which is exact because nobody
can write a read-only directory; a `-wal` file left by a writer that did not close is not read,
and a warning says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.errors import StoreError
from tickwatch.store import SqlStore
from tickwatch.store.sql import clean_market_data

log = logging.getLogger(__name__)


@dataclass
class StoreView:
    engine: Engine
    read_only: bool

    @property
    def url_masked(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def open_view(url: str) -> StoreView:
    """The store at `url` for reading; a read-only SQLite file falls back to `immutable`."""
    try:
        return StoreView(SqlStore(url).engine, read_only=False)
    except StoreError:
        path = _sqlite_file(url)
        if path is None or not path.is_file():
            raise
    engine = create_engine(
        f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&immutable=1&uri=true"
    )
    try:
        with engine.connect() as conn:
            conn.execute(select(clean_market_data.c.symbol).limit(1)).all()
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(
            f"cannot read the store {path} even read-only: {str(exc).splitlines()[0]}; "
            "check the file and its permissions"
        ) from exc
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        log.warning(
            "%s is read-only and has an unmerged %s: serving the database without it "
            "(the newest rows may be missing)",
            path.parent,
            wal.name,
        )
    log.info("store %s is read-only: serving it as a snapshot", path)
    return StoreView(engine, read_only=True)


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)
