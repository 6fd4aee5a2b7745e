"""Restart: the Spark job killed mid-stream resumes from its checkpoint; nothing lost or doubled.

`tickwatch spark` runs as a real process (small micro-batches); after a few committed batches it
is killed with SIGKILL (driver, JVM and Python workers: no clean shutdown, possibly between a
batch's writes and its commit). The rest of the stream arrives while it is down. A second run
from the same checkpoint (--once) finishes the stream. PostgreSQL must then hold exactly the
embedded pipeline's rows: nothing missing, nothing twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.spark_stream import assert_same_rows, embedded, produce, tick_stream
from tests.ledger import Ledger
from tickwatch.store import SqlStore
from tickwatch.store.sql import clean_market_data

pytestmark = [pytest.mark.spark, pytest.mark.kafka, pytest.mark.postgres]

PREFIX = "restart."


def _job(env: dict[str, str], log: Path, max_offsets: int, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        *(sys.executable, "-m", "tickwatch.cli", "spark", "--master", "local[2]"),
        *("--topic-prefix", PREFIX, "--trigger", "0.5", "--max-offsets", str(max_offsets)),
        *extra,
    ]
    with log.open("ab") as handle:
        return subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def _commits(checkpoint: Path) -> int:
    folder = checkpoint / "commits"
    return len([p for p in folder.iterdir() if p.name.isdigit()]) if folder.exists() else 0


def _count(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(clean_market_data)).scalar_one()
    engine.dispose()
    return int(n)


def test_killed_job_resumes_from_its_checkpoint(
    kafka_bootstrap: str, postgres_db: str, tmp_path: Path, ledger: Ledger
) -> None:
    messages = tick_stream()
    first, rest = messages[: len(messages) * 2 // 3], messages[len(messages) * 2 // 3 :]
    produce(kafka_bootstrap, PREFIX, first)
    expected, _ = embedded(messages, tmp_path)
    total = expected.count(clean_market_data)

    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "STORE_URL": postgres_db,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LOG_LEVEL": "WARNING",
    }
    checkpoint = tmp_path / "data" / "checkpoints" / "spark"
    log = tmp_path / "spark.log"
    job = _job(env, log, 120)
    deadline = time.monotonic() + 240
    while _commits(checkpoint) < 3:
        assert job.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no micro-batch committed in time"
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait(timeout=30)
    written = _count(postgres_db)
    assert 0 < written < total, "the job must be stopped mid-stream"

    produce(kafka_bootstrap, PREFIX, rest)
    again = _job(env, log, 5000, "--once")
    assert again.wait(timeout=300) == 0, log.read_text()[-3000:]

    store = SqlStore(postgres_db)
    found = store.count(clean_market_data)
    ledger.record(
        "faults",
        "Spark job killed (SIGKILL) mid-stream, restarted from its checkpoint",
        1,
        f"{total} windows, same rows as the embedded engine",
        f"{found} windows, {'same' if found == total else 'different'} rows as the embedded engine",
    )
    assert_same_rows(store, expected)
