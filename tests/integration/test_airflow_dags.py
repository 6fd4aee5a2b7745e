"""The DAGs in a real Apache Airflow 3 (its own venv, scripts/airflow.sh), against the test stack.

The stack: the session's Kafka broker and PostgreSQL, and two real producer processes
(`tickwatch run --bus kafka --source simulate`, one per market) started by the package's own
local launcher, exactly as the restart task starts them. The Spark job is not part of it (it
has its own tests): its output, fresh windows, is written to PostgreSQL by the test.

`dag.test()` runs every task in the driver process (tests/integration/airflow_driver.py).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.airflow_run import drive
from tickwatch.config import Settings
from tickwatch.model import AssetType, Window
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.ops.restart import LocalLauncher
from tickwatch.store import SqlStore

pytestmark = [pytest.mark.airflow, pytest.mark.kafka, pytest.mark.postgres]


PIPELINE_TASKS = {
    "kafka_health": [],
    "postgres_health": [],
    "verify_topics": ["kafka_health", "postgres_health"],
    "check_stock_producer": ["verify_topics"],
    "check_crypto_producer": ["verify_topics"],
    "check_stream_job": ["verify_topics"],
    "restart_stock_producer": ["check_stock_producer"],
    "restart_crypto_producer": ["check_crypto_producer"],
    "restart_stream_job": ["check_stream_job"],
    "check_data_freshness": [
        "check_crypto_producer",
        "check_stock_producer",
        "check_stream_job",
        "restart_crypto_producer",
        "restart_stock_producer",
        "restart_stream_job",
    ],
    "check_row_counts": ["check_data_freshness"],
    "check_consumer_lag": ["check_data_freshness"],
    "summary": ["check_consumer_lag", "check_row_counts"],
}
QUALITY_CHECKS = [
    "anomaly_statistics",
    "check_duplicates",
    "check_nulls",
    "check_price_sanity",
    "cleanup_checkpoints",
    "parquet_output",
    "rows_per_window",
]


def test_dags_import_with_the_designed_graphs(airflow_home: Path, tmp_path: Path):
    body = drive(airflow_home, {"DATA_DIR": str(tmp_path)})
    assert body["errors"] == {}
    dags = body["dags"]
    assert isinstance(dags, dict)
    assert set(dags) == {"market_anomaly_pipeline", "data_quality_monitoring"}
    pipeline = dags["market_anomaly_pipeline"]
    assert pipeline["schedule"] == "0:05:00"
    assert {t: v["upstream"] for t, v in pipeline["tasks"].items()} == PIPELINE_TASKS
    assert pipeline["tasks"]["restart_crypto_producer"]["rule"] == "TriggerRule.ONE_FAILED"
    quality = dags["data_quality_monitoring"]
    assert quality["schedule"] == "@hourly"
    assert quality["tasks"]["quality_report"]["upstream"] == QUALITY_CHECKS
    assert len(quality["tasks"]) == 8


def _fresh_windows(now: datetime) -> list[Window]:
    """What the stream job would have written: the newest windows closing at the watermark."""
    newest = now.replace(second=0, microsecond=0) - timedelta(minutes=15)
    newest -= timedelta(minutes=newest.minute % 5)
    rows = []
    for i in range(12):
        start = newest - timedelta(minutes=5 * i)
        for symbol, kind in (("AAPL", AssetType.STOCK), ("bitcoin", AssetType.CRYPTO)):
            end = start + timedelta(minutes=5)
            rows.append(
                Window(symbol, kind, start, end, 100, 101, 99, 100.5, 10, 4, 100.2, 0.5, 0.8)
            )
    return rows


@pytest.fixture
def stack(
    kafka_bootstrap: str, postgres_db: str, tmp_path: Path
) -> Iterator[tuple[dict[str, str], LocalLauncher, Settings]]:
    producer = f"{sys.executable} -m tickwatch.cli run --bus kafka --source simulate --no-web"
    env = {
        "BUS": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STORE_URL": postgres_db,
        "DATA_DIR": str(tmp_path / "data"),
        "STOCK_SYMBOLS": "AAPL",
        "CRYPTO_IDS": "bitcoin",
        "SIM_HISTORY_HOURS": "0",
        "PRODUCER_STOCK_COMMAND": f"env CRYPTO_IDS= {producer}",
        "PRODUCER_CRYPTO_COMMAND": f"env STOCK_SYMBOLS= {producer}",
        "LOG_LEVEL": "WARNING",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    launcher = LocalLauncher.from_settings(settings)
    try:
        launcher.start("producer-stock")
        launcher.start("producer-crypto")
        store = SqlStore(postgres_db)
        store.write(_fresh_windows(datetime.now(UTC)), [])
        store.close()
        yield env, launcher, settings
    finally:
        for service in ("producer-stock", "producer-crypto"):
            launcher.stop(service)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _wait_for(condition: object, seconds: float = 90.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(1.0)
    return False


def _producer_ok(settings: Settings) -> bool:
    ctx = OpsContext.from_settings(settings)
    try:
        return run_check("producer-crypto", ctx).verdict is Verdict.OK
    finally:
        ctx.close()


def test_pipeline_green_then_red_on_a_dead_producer_which_is_restarted(
    airflow_home: Path, stack: tuple[dict[str, str], LocalLauncher, Settings]
):
    env, launcher, settings = stack
    assert _wait_for(lambda: _producer_ok(settings)), "the crypto producer never published"

    green = drive(airflow_home, env, "market_anomaly_pipeline")
    tasks = green["tasks"]
    assert isinstance(tasks, dict)
    assert green["state"] == "success", tasks
    restarts = {t for t in PIPELINE_TASKS if t.startswith("restart_")}
    assert {t for t, s in tasks.items() if s == "success"} == set(PIPELINE_TASKS) - restarts
    assert {tasks[t] for t in restarts} == {"skipped"}

    pid = launcher.pid("producer-crypto")
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)  # the producer dies; its pid file stays behind
    assert _wait_for(lambda: launcher.alive("producer-crypto") is False, 10)

    red = drive(airflow_home, env, "market_anomaly_pipeline")
    tasks = red["tasks"]
    assert isinstance(tasks, dict)
    assert red["state"] == "failed"
    assert {t for t, s in tasks.items() if s == "failed"} == {"check_crypto_producer", "summary"}
    assert tasks["restart_crypto_producer"] == "success"
    assert tasks["restart_stock_producer"] == "skipped"
    assert tasks["check_data_freshness"] == "success"

    new_pid = launcher.pid("producer-crypto")
    assert new_pid is not None and new_pid != pid
    assert launcher.alive("producer-crypto") is True
    assert _wait_for(lambda: _producer_ok(settings)), "the restarted producer does not publish"
