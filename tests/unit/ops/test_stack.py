"""The stack's configuration file is the mode: what `detect` and the restart launcher read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickwatch.config import Settings
from tickwatch.ops.stack import STACK_FILE, detect, launcher, stack_dir

STACK = {
    "mode": "distributed",
    "bus": "kafka",
    "kafka_bootstrap_servers": "127.0.0.1:40001",
    "store_url": "postgresql+psycopg://tickwatch@127.0.0.1:40002/tickwatch",
    "web_port": 18000,
    "airflow_port": None,
    "services": {"producer-stock": "sleep 60", "web": "sleep 60"},
}


def _settings(data_dir: Path, **values: object) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = stack_dir(tmp_path)
    folder.mkdir()
    (folder / STACK_FILE).write_text(json.dumps({**STACK, "data_dir": str(tmp_path)}))
    return tmp_path


def test_no_stack_leaves_the_settings_alone(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert detect(settings) is settings
    assert launcher(settings) is None


def test_the_stack_sets_bus_broker_and_store_with_the_env_password(data_dir: Path) -> None:
    found = detect(_settings(data_dir, postgres_password="s3cret-pw"))
    assert found.bus == "kafka"
    assert found.kafka_bootstrap_servers == "127.0.0.1:40001"
    assert found.store_url == "postgresql+psycopg://tickwatch:s3cret-pw@127.0.0.1:40002/tickwatch"


def test_settings_other_than_the_defaults_win_over_the_stack(data_dir: Path) -> None:
    found = detect(_settings(data_dir, store_url="sqlite:///x.db"))
    assert (found.bus, found.store_url) == ("kafka", "sqlite:///x.db")
    assert found.kafka_bootstrap_servers == "127.0.0.1:40001"
    mine = detect(_settings(data_dir, kafka_bootstrap_servers="10.0.0.9:9092"))
    assert mine.kafka_bootstrap_servers == "10.0.0.9:9092"


def test_defaults_written_out_as_in_env_example_give_way(data_dir: Path) -> None:
    written = {"bus": "memory", "kafka_bootstrap_servers": "localhost:29092", "store_url": ""}
    found = detect(_settings(data_dir, **written))
    assert (found.bus, found.kafka_bootstrap_servers) == ("kafka", "127.0.0.1:40001")
    assert found.store_url == "postgresql+psycopg://tickwatch:marketpass@127.0.0.1:40002/tickwatch"


def test_the_launcher_passes_the_secret_in_the_environment_only(data_dir: Path) -> None:
    target = launcher(_settings(data_dir, postgres_password="s3cret-pw"))
    assert target is not None
    assert target.run_dir == stack_dir(data_dir)
    assert target.env is not None
    assert target.env["STORE_URL"].endswith(":s3cret-pw@127.0.0.1:40002/tickwatch")
    assert (target.env["BUS"], target.env["WEB_PORT"]) == ("kafka", "18000")
    assert all("s3cret" not in command for command in target.commands.values())
    target.start("web")
    try:
        assert target.alive("web") is True
        assert (stack_dir(data_dir) / "web.pid").exists()
    finally:
        target.stop("web")
    assert target.alive("web") is None
