"""store/migrate.py without a server: one line of revisions, and SQLite left to create_all.
(The migrations themselves run on real PostgreSQL: tests/integration/test_migrations.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from tickwatch.cli import app
from tickwatch.errors import StoreError
from tickwatch.store import SqlStore, migrate


def test_the_revisions_form_one_line_from_the_seed() -> None:
    scripts = ScriptDirectory(str(migrate.SCRIPTS))
    assert scripts.get_heads() == [migrate.head()]  # no branches to merge
    chain = list(scripts.walk_revisions())  # newest first
    assert chain[-1].revision == "0001_seed" and chain[-1].down_revision is None
    files = sorted(p.name for p in (migrate.SCRIPTS / "versions").glob("*.py"))
    assert files == [f"{r.revision}.py" for r in reversed(chain)]


def test_an_sqlite_store_creates_its_tables_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tickwatch.db'}"
    code = (
        "import sys; from tickwatch.store import SqlStore; "
        f"SqlStore({url!r}).close(); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert "clean_market_data" in tables and "alembic_version" not in tables


def test_migrations_refuse_sqlite(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'tickwatch.db'}")
    with pytest.raises(StoreError, match="migrations are for PostgreSQL"):
        migrate.upgrade(store.engine)
    store.close()


def test_store_upgrade_on_sqlite_has_nothing_to_do(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        app, ["store", "upgrade"], env={"DATA_DIR": str(tmp_path), "STORE_URL": ""}
    )
    assert done.exit_code == 0
    assert "nothing to migrate" in done.output
