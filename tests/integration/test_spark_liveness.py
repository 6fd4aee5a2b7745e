"""The checks see the real Spark job: its heartbeat, its checkpoint and its position.

`tickwatch spark` runs as a real process on the default checkpoint (DATA_DIR/checkpoints/spark)
with a 1 s trigger, so the heartbeat limit is 2 x 1 + 1 = 3 s. The checks are built from the
settings alone (`OpsContext.from_settings`, BUS=kafka), as `tickwatch check` builds them:

- once the job has read the topics, consumer-lag measures 0 behind each raw topic from Spark's
  checkpoint (there is no consumer group in this mode);
- with no new data for several triggers (no micro-batch, checkpoint files unchanged) the job is
  still alive: the heartbeat beats without batches;
- after SIGKILL, the stream-job check fails once the heartbeat is older than two triggers, and
  consumer-lag counts exactly the messages produced since (worked out per topic from what was
  produced).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.spark_stream import produce, tick_stream
from tickwatch.config import Settings
from tickwatch.model import RAW_CRYPTO_TICKS, RAW_STOCK_TICKS
from tickwatch.ops.checks import CheckResult, OpsContext, Verdict, run_check

pytestmark = [pytest.mark.spark, pytest.mark.kafka, pytest.mark.postgres]


def _wait(
    condition: Callable[[], bool],
    seconds: float,
    what: str,
    job: subprocess.Popen[bytes],
    log: Path,
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert job.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{what} not seen in {seconds:g} s"
        time.sleep(0.5)


def test_checks_follow_the_real_spark_job_and_see_it_die(
    kafka_bootstrap: str, postgres_db: str, tmp_path: Path
) -> None:
    prefix = f"live{uuid.uuid4().hex[:6]}."
    messages = tick_stream(hours=0.5)
    first, rest = messages[:300], messages[300:340]
    produce(kafka_bootstrap, prefix, first)
    settings = Settings(
        data_dir=tmp_path / "data",
        bus="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        store_url=postgres_db,
        _env_file=None,  # type: ignore[call-arg]
    )

    def check(name: str) -> CheckResult:
        ctx = OpsContext.from_settings(settings, now=datetime.now(UTC), topic_prefix=prefix)
        try:
            return run_check(name, ctx)
        finally:
            ctx.close()

    stock, crypto = prefix + RAW_STOCK_TICKS, prefix + RAW_CRYPTO_TICKS
    env = {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "STORE_URL": postgres_db,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "BUS": "kafka",
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "spark.log"
    command = [
        *(sys.executable, "-m", "tickwatch.cli", "spark", "--master", "local[2]"),
        *("--topic-prefix", prefix, "--trigger", "1"),
    ]
    with log.open("ab") as handle:
        job = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        caught_up = {"checkpoint spark": {stock: 0, crypto: 0}}
        _wait(lambda: check("consumer-lag").figures.get("lag") == caught_up, 300, "lag 0", job, log)
        alive = check("stream-job")
        assert alive.verdict is Verdict.OK, alive.message
        assert alive.figures["trigger_seconds"] == 1.0
        offsets = settings.data_dir / "checkpoints" / "spark" / "offsets"
        batches = sorted(p.name for p in offsets.iterdir())
        time.sleep(5)  # five triggers with no input: no micro-batch, yet the job beats
        assert sorted(p.name for p in offsets.iterdir()) == batches
        quiet = check("stream-job")
        assert quiet.verdict is Verdict.OK, quiet.message
        assert quiet.figures["heartbeat_age_s"] <= 3.0  # type: ignore[operator]
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=30)
    killed = time.monotonic()
    produce(kafka_bootstrap, prefix, rest)
    expected = {
        stock: sum(m.topic == RAW_STOCK_TICKS for m in rest),
        crypto: sum(m.topic == RAW_CRYPTO_TICKS for m in rest),
    }
    lag = check("consumer-lag")
    assert lag.figures["lag"] == {"checkpoint spark": expected}, lag.message
    time.sleep(max(0.0, 3.5 - (time.monotonic() - killed)))
    dead = check("stream-job")
    assert dead.verdict is Verdict.FAIL, dead.message
    assert "heartbeat" in dead.message and "dead or stuck" in dead.message
