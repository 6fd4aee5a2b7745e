"""Real Apache Airflow 3 for the tests: its own venv (scripts/airflow.sh), a migrated metadata
database, and DAG runs through `dag.test()` in airflow_driver.py (one JSON line back)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "airflow" / "dags"
DRIVER = Path(__file__).with_name("airflow_driver.py")
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"


def install_and_migrate(home: Path) -> None:
    """Airflow installed (scripts/airflow.sh) and a fresh metadata database in `home`."""
    subprocess.run([str(ROOT / "scripts" / "airflow.sh"), "install"], check=True, timeout=1200)
    subprocess.run(
        [str(ROOT / ".venv-airflow" / "bin" / "airflow"), "db", "migrate"],
        check=True,
        env={**os.environ, **airflow_env(home)},
        capture_output=True,
        timeout=300,
    )


def airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


def drive(home: Path, env: dict[str, str], dag_id: str | None = None) -> dict[str, object]:
    """Import the DAG folder and, given `dag_id`, run that DAG once; the driver's result."""
    args = [str(AIRFLOW_PYTHON), str(DRIVER), str(DAGS), *([dag_id] if dag_id else [])]
    done = subprocess.run(
        args,
        env={**os.environ, **airflow_env(home), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, (
        f"driver failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    result: dict[str, object] = json.loads(lines[-1].removeprefix("RESULT "))
    return result
