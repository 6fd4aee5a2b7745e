"""market_anomaly_pipeline: every 5 minutes, is the pipeline up and is data flowing?

    kafka_health ─┐
                  ├─► verify_topics ─► check_<producer|stream job> ─► restart_<...> (on failure)
    postgres_health                                   │
                                                      ▼
                       check_data_freshness ─► check_row_counts, check_consumer_lag ─► summary

Each task calls one function of `tickwatch.ops.airflow_tasks` (the same checks as
`tickwatch check`).
A failing check is red; its restart task runs only then; `summary` is red when any check
failed, so the run is red too, and names what failed and what was restarted.
Settings come from the worker's environment (BUS, KAFKA_BOOTSTRAP_SERVERS, STORE_URL, ...).
For the local stack (`tickwatch stack up`, which also starts Airflow with `--airflow`) DATA_DIR
is enough: the checks read the stack's configuration, and a restart starts the dead producer or
resubmits the dead Spark job with the stack's own command line and environment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import TriggerRule, dag, get_current_context, task

from tickwatch.ops.airflow_tasks import check_task, restart_task, summary_task

CHECKS = {
    "kafka_health": "kafka",
    "postgres_health": "store",
    "verify_topics": "topics",
    "check_stock_producer": "producer-stock",
    "check_crypto_producer": "producer-crypto",
    "check_stream_job": "stream-job",
    "check_data_freshness": "freshness",
    "check_row_counts": "row-counts",
    "check_consumer_lag": "consumer-lag",
}
RESTARTS = {
    "restart_stock_producer": "producer-stock",
    "restart_crypto_producer": "producer-crypto",
    "restart_stream_job": "stream-job",
}


def _check(task_id: str, trigger_rule: str = TriggerRule.ALL_SUCCESS) -> Any:
    name = CHECKS[task_id]
    return task(task_id=task_id, trigger_rule=trigger_rule)(lambda: check_task(name))()


def _restart(task_id: str) -> Any:
    service = RESTARTS[task_id]
    return task(task_id=task_id, trigger_rule=TriggerRule.ONE_FAILED)(
        lambda: restart_task(service)
    )()


@dag(
    dag_id="market_anomaly_pipeline",
    schedule=timedelta(minutes=5),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},
    tags=["tickwatch", "health"],
    doc_md=__doc__,
)
def market_anomaly_pipeline() -> None:
    topics = _check("verify_topics")
    [_check("kafka_health"), _check("postgres_health")] >> topics

    freshness = _check("check_data_freshness", TriggerRule.ALL_DONE)
    for check_id, restart_id in (
        ("check_stock_producer", "restart_stock_producer"),
        ("check_crypto_producer", "restart_crypto_producer"),
        ("check_stream_job", "restart_stream_job"),
    ):
        checked = _check(check_id)
        restarted = _restart(restart_id)
        topics >> checked >> restarted
        [checked, restarted] >> freshness

    @task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE)
    def summary() -> dict[str, Any]:
        ti = get_current_context()["ti"]
        return summary_task(CHECKS, RESTARTS, lambda task_id: ti.xcom_pull(task_ids=task_id))

    (
        freshness
        >> [
            _check("check_row_counts", TriggerRule.ALL_DONE),
            _check("check_consumer_lag", TriggerRule.ALL_DONE),
        ]
        >> summary()
    )


market_anomaly_pipeline()
