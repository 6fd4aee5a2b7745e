"""data_quality_monitoring: hourly data-quality checks over the stored results.

    check_nulls, check_duplicates, check_price_sanity, anomaly_statistics,
    rows_per_window, parquet_output, cleanup_checkpoints  ─►  quality_report

The seven tasks run side by side; each calls one check of `tickwatch.ops` (the same ones as
`tickwatch check quality`) and is red when its check fails. `quality_report` runs whatever
happened upstream, writes the aggregated report to DATA_DIR/reports/quality-*.json, and is
red when any quality check fails, so the run's colour is the data's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import TriggerRule, dag, task

from tickwatch.ops.airflow_tasks import check_task

TASKS = {
    "check_nulls": "nulls",
    "check_duplicates": "duplicates",
    "check_price_sanity": "price-sanity",
    "anomaly_statistics": "anomaly-stats",
    "rows_per_window": "rows-per-window",
    "parquet_output": "parquet",
    "cleanup_checkpoints": "checkpoints",
}


def _check(task_id: str, name: str, trigger_rule: str = TriggerRule.ALL_SUCCESS) -> Any:
    return task(task_id=task_id, trigger_rule=trigger_rule)(lambda: check_task(name))()


@dag(
    dag_id="data_quality_monitoring",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    tags=["tickwatch", "quality"],
    doc_md=__doc__,
)
def data_quality_monitoring() -> None:
    checks = [_check(task_id, name) for task_id, name in TASKS.items()]
    checks >> _check("quality_report", "quality-report", TriggerRule.ALL_DONE)


data_quality_monitoring()
