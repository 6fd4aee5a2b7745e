"""Throwaway PostgreSQL and Kafka for the tests, started through the project's own scripts.

`scripts/postgres.sh` and `scripts/kafka.sh` do the work (the same commands a developer runs by
hand); this module only calls them and keeps the state folder. The session fixtures in
`tests/conftest.py` start each service once and stop it at the end.

Set TICKWATCH_TEST_POSTGRES_URL or TICKWATCH_TEST_KAFKA to use a service that already runs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@dataclass
class Postgres:
    """A PostgreSQL server in its own folder (under /tmp: as root the server runs as `postgres`,
    which must be able to reach the folder)."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tickwatch-pg-")))
    url: str = ""

    def start(self) -> str:
        self.url = _run(str(SCRIPTS / "postgres.sh"), "start", str(self.folder))
        return self.url

    def stop(self) -> None:
        _run(
            str(SCRIPTS / "postgres.sh"), "stop", str(self.folder)
        ) if self.folder.exists() else None
        shutil.rmtree(self.folder, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """Create an empty database on the server of `server_url`; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, url: str) -> None:
    name = sa.make_url(url).database
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@dataclass
class KafkaBroker:
    """A single-node KRaft broker in its own folder; `stop(keep=True)` then `start()` restarts it
    with the same data and port (an outage, as clients see it)."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tickwatch-kafka-")))
    bootstrap: str = ""

    def start(self) -> str:
        self.bootstrap = _run(str(SCRIPTS / "kafka.sh"), "start", str(self.folder))
        return self.bootstrap

    def stop(self, keep: bool = False) -> None:
        if self.folder.exists():
            _run(str(SCRIPTS / "kafka.sh"), "stop", str(self.folder), *(["--keep"] if keep else []))
