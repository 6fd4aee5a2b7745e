"""GET /api/divergences over a store the real pipeline filled from two venues' ticks
(tests/unit/test_processor_divergence.py: kraken 400 above coinbase's 50,000 from 60 s to
1,500 s, then back to 50,000, plus a 20 s blip that is never stored)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.unit.test_processor_divergence import NOW, RECORDS, T0
from tickwatch.config import Settings
from tickwatch.processor import Processor
from tickwatch.store import SqlStore
from tickwatch.web import create_app
from tickwatch.web.divergences import divergence_list
from tickwatch.web.queries import Span


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path, store_url=None, max_clock_skew_seconds=10**9)
    store = SqlStore(settings.database_url)
    processor = Processor(settings, store, None, clock=lambda: NOW)
    processor.handle(RECORDS)
    processor.finish()
    store.close()
    return settings


def test_divergences_are_listed_with_their_verdict(settings: Settings) -> None:
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        rows = client.get("/api/divergences", params={"range": "all"}).json()
        assert client.get("/api/divergences", params={"symbol": "ETH-USD"}).json() == []
    assert len(rows) == 1
    row = rows[0]
    assert row["venues"] == "coinbase|kraken" and row["asset_type"] == "crypto"
    assert row["started_at"] == (T0 + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    assert row["ended_at"] == (T0 + timedelta(seconds=1500)).isoformat().replace("+00:00", "Z")
    assert round(row["max_bps"], 2) == 79.68  # 400 / 50,200 * 10,000
    # kraken moved 80 bps from where the two agreed, then came back to 50,000 unfollowed
    assert (row["offender"], row["kind"]) == ("kraken", "data_fault")


def test_a_store_without_the_table_lists_none(tmp_path: Path) -> None:
    # a store written before the table existed, served read-only: nothing to list, no error
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    assert divergence_list(engine, Span(None, None), [], 5) == []


@pytest.mark.parametrize(
    "params",
    [
        {"symbol": "'; DROP TABLE divergences; --"},
        {"symbol": "🚀\u0000\ud7ff"},
        {"symbol": "A" * 8_000},
        {"limit": "10" + "0" * 40},
        {"limit": "0"},
        {"range": "NaNh"},
        {"start": "9999-12-31T23:59:59+14:00"},
    ],
)
def test_hostile_queries_are_answered_not_crashed(settings: Settings, params: dict[str, str]):
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        response = client.get("/api/divergences", params=params)
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            assert response.json() == []  # no such symbol, or a range after the divergence
        assert len(client.get("/api/divergences", params={"range": "all"}).json()) == 1
