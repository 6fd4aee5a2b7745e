"""Runs inside .venv-airflow (Apache Airflow 3): loads the DAG folder and, when asked, runs one
DAG with `dag.test()`. Prints one JSON line for tests/integration/test_airflow_dags.py.

    python airflow_driver.py DAG_FOLDER                 import only
    python airflow_driver.py DAG_FOLDER DAG_ID          import, then dag.test()
"""

from __future__ import annotations

import json
import sys

from airflow.dag_processing.dagbag import DagBag


def main() -> None:
    bag = DagBag(dag_folder=sys.argv[1])
    body: dict[str, object] = {
        "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dags": {
            dag_id: {
                "schedule": str(getattr(dag, "schedule", None)),
                "tasks": {
                    t.task_id: {
                        "upstream": sorted(t.upstream_task_ids),
                        "rule": str(t.trigger_rule),
                    }
                    for t in dag.tasks
                },
            }
            for dag_id, dag in bag.dags.items()
        },
    }
    if len(sys.argv) > 2:
        run = bag.dags[sys.argv[2]].test()
        body["state"] = str(run.state)
        body["tasks"] = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print("RESULT " + json.dumps(body))


if __name__ == "__main__":
    main()
