"""Fixtures of the integration tests that more than one module uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.airflow_run import install_and_migrate


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Airflow installed and a fresh metadata database, once per session."""
    home = tmp_path_factory.mktemp("airflow-home")
    install_and_migrate(home)
    return home
