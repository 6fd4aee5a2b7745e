"""Provenance: a store that holds simulator output says so wherever it lives, and the web app's
/api/meta and /health show it (the SIMULATED banner), whatever the folder is called."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tickwatch.cli import app
from tickwatch.config import Settings
from tickwatch.store import SqlStore, provenance
from tickwatch.web import create_app


def served(data_dir: Path) -> tuple[bool, bool]:
    """(/api/meta simulated, /health simulated) of the store in `data_dir`, served as
    `tickwatch serve` does for a folder not named 'simulated'."""
    web = create_app(Settings(data_dir=data_dir, _env_file=None))  # type: ignore[call-arg]
    with TestClient(web, base_url="http://127.0.0.1") as client:
        return client.get("/api/meta").json()["simulated"], client.get("/health").json()[
            "simulated"
        ]


def replay(tmp_path: Path, name: str, source: str) -> Path:
    ticks = tmp_path / f"{name}.jsonl"
    ticks.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "source": source,
                    "asset_type": "crypto",
                    "symbol": "bitcoin",
                    "event_time": f"2024-03-04T00:{minute:02d}:00+00:00",
                    "price": 100.0 + minute,
                    "volume": 1.0,
                }
            )
            + b"\n"
            for minute in range(0, 30, 2)
        )
    )
    data_dir = tmp_path / name
    done = CliRunner().invoke(app, ["replay", str(ticks), "--data-dir", str(data_dir)])
    assert done.exit_code == 0, done.output
    return data_dir


def test_replayed_simulator_output_is_served_as_simulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    data_dir = replay(tmp_path, "replayed", "simulator")
    assert served(data_dir) == (True, True)
    store = SqlStore(Settings(data_dir=data_dir, _env_file=None).database_url)  # type: ignore[call-arg]
    assert provenance.sources(store.engine) == {"simulator": "simulated"}
    store.close()


def test_replayed_live_ticks_are_not_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    data_dir = replay(tmp_path, "recorded", "coingecko")
    assert served(data_dir) == (False, False)


def test_a_store_without_provenance_reads_as_not_simulated(tmp_path: Path):
    store = SqlStore(f"sqlite:///{tmp_path / 'old.db'}")  # no provenance table yet
    provenance.provenance.drop(store.engine, checkfirst=True)
    assert provenance.sources(store.engine) == {}
    assert provenance.is_simulated(store.engine) is False
    provenance.record(store.engine, ["coingecko", "simulator", "simulator"])
    provenance.record(store.engine, ["simulator"])  # once per source
    assert provenance.sources(store.engine) == {"coingecko": "live", "simulator": "simulated"}
    assert provenance.is_simulated(store.engine) is True
    store.close()
