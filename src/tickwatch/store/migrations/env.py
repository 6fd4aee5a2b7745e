"""Alembic's environment: runs on the connection `tickwatch.store.migrations` hands it.

No alembic.ini and no URL here: the caller opens the database from STORE_URL and passes the
connection (and, to compare, the package's metadata) in `config.attributes`, so no secret is
written to a file and Alembic's own logging setup never replaces the application's.
"""

from __future__ import annotations

from alembic import context

config = context.config
if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported: upgrade a live database")
context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes.get("metadata"),
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
