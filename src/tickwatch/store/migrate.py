"""PostgreSQL schema migrations (Alembic): the revisions in `store/migrations/versions/`.

A PostgreSQL store is brought to the newest revision when it opens (`SqlStore`) and by
`tickwatch store upgrade`; the store never creates PostgreSQL tables by itself. SQLite (the
embedded store, one local file) keeps `metadata.create_all`.

Alembic is configured here, in code, from the store's own engine (STORE_URL): no alembic.ini,
so no password in a file. Every upgrade runs in one transaction under a PostgreSQL advisory
lock, so the Spark executors and the runtime opening the same database at once upgrade it
once, and a failed revision leaves the schema as it was (PostgreSQL DDL is transactional).

Databases made before migrations existed (by create_all or storage/init.sql) have no
`alembic_version`; the revisions that stand for that history create only missing tables and
indexes, so they upgrade from the start like an empty database.

A new revision: change the tables in the package, then

    python -m tickwatch.store.migrate revision "what changed"   # autogenerate

against the database of STORE_URL at the current head, and review the file it writes.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, MetaData, func, select
from sqlalchemy.exc import SQLAlchemyError

from tickwatch.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPTS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key: "tickwatch" as a number, shared by every process of one database
LOCK_KEY = 0x7469636B77617463


def _not_routine(record: logging.LogRecord) -> bool:
    """Alembic logs its plugins when imported and its dialect on every connection, i.e. on
    every store open: drop those lines, keep the ones that say a revision ran. (Installed
    before Alembic is imported, which is why the functions below import it themselves.)"""
    return not str(record.msg).startswith(("setup plugin", "Context impl", "Will assume"))


for _name in ("alembic.runtime.plugins", "alembic.runtime.migration"):
    logging.getLogger(_name).addFilter(_not_routine)


def _config(conn: Connection, metadata: MetaData | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = conn
    config.attributes["metadata"] = metadata
    return config


@functools.cache  # the scripts do not change while a process runs; parsing them takes ~15 ms
def head() -> str:
    """The newest revision."""
    from alembic.script import ScriptDirectory

    newest = ScriptDirectory(str(SCRIPTS)).get_current_head()
    assert newest is not None, f"no revisions under {SCRIPTS}"
    return newest


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "heads") -> tuple[str | None, str | None]:
    """Bring the database to `revision`; returns the revisions before and after."""
    from alembic import command

    def step(conn: Connection, before: str | None) -> None:
        if revision != "heads" or before != head():
            command.upgrade(_config(conn), revision)

    return _migrate(engine, step)


def downgrade(engine: Engine, revision: str) -> tuple[str | None, str | None]:
    """Take the database back to `revision` ("-1": one step); returns before and after."""
    from alembic import command

    return _migrate(engine, lambda conn, _: command.downgrade(_config(conn), revision))


def _migrate(
    engine: Engine, step: Callable[[Connection, str | None], None]
) -> tuple[str | None, str | None]:
    """Run `step` in one transaction under the advisory lock; errors become StoreErrors."""
    from alembic.migration import MigrationContext
    from alembic.util import CommandError

    where = engine.url.render_as_string(hide_password=True)
    if engine.dialect.name != "postgresql":
        raise StoreError(f"{where}: migrations are for PostgreSQL; SQLite makes its own tables")
    before = None
    try:
        with engine.begin() as conn:
            conn.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
            context = MigrationContext.configure(conn)
            before = context.get_current_revision()
            step(conn, before)
            return before, context.get_current_revision()
    except CommandError as exc:  # e.g. a database a newer tickwatch migrated
        raise StoreError(
            f"cannot migrate {where} (at revision {before}; this tickwatch knows up to "
            f"{head()}): {exc}. Run the tickwatch that migrated it, or first downgrade with that "
            f"one: tickwatch store downgrade --to {head()}"
        ) from exc
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate {where}: {exc}") from exc


def differences(engine: Engine, metadata: MetaData) -> list[Any]:
    """What autogenerate would write to turn the database's schema into `metadata`'s:
    empty when a database at head and the package's tables agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def _revision(message: str) -> None:
    from alembic import command

    from tickwatch.config import load_settings
    from tickwatch.store.ddl import all_tables
    from tickwatch.store.sql import connect

    url = load_settings().store_url
    if url is None:
        sys.exit("set STORE_URL to a PostgreSQL database at the current head")
    # ids read in order like the files: 0005_what_changed (alembic_version holds 32 characters)
    number = len(list((SCRIPTS / "versions").glob("*.py"))) + 1
    rev_id = f"{number:04d}_{re.sub(r'[^a-z0-9]+', '_', message.lower()).strip('_')[:24]}"
    engine = connect(url)
    with engine.begin() as conn:
        config = _config(conn, all_tables())
        config.set_main_option("file_template", "%%(rev)s")
        command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
    engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit("usage: STORE_URL=... python -m tickwatch.store.migrate revision MESSAGE")
    _revision(sys.argv[2])
