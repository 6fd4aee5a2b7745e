"""GET /api/alerts/{id}/drill over a store filled by the real pipeline from hand-made ticks.

AAPL, 30 windows from 2024-03-04 14:30 UTC, two ticks each (at +0 and +4 min, volume 1):
open 100, close 100.1 or 99.9 in turn (return +0.1 % / -0.1 %), except window 25: close 102
(+2 %). Its baseline is the previous 20 returns, ten of each sign: mean 0, sample std
0.1 * sqrt(20 / 19); z = 2 / that = 19.0. Volume (2 per window) and volatility (the same
spread each window but window 25) have a deviation of 0 before it, so they are not scored.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tickwatch.config import Settings
from tickwatch.model import AssetType, Tick
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts
from tickwatch.web import create_app

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
FIVE = timedelta(minutes=5)
SPIKE = 25


def window_ticks(k: int) -> list[Tick]:
    close = 102.0 if k == SPIKE else (100.1 if k % 2 == 0 else 99.9)
    begin = START + k * FIVE
    return [
        Tick("test", AssetType.STOCK, "AAPL", at, at, price, 1.0)
        for at, price in ((begin, 100.0), (begin + timedelta(minutes=4), close))
    ]


@pytest.fixture
def client(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, store_url=None)
    store = SqlStore(settings.database_url)
    processor = Processor(settings, store, None, clock=lambda: START + timedelta(days=1))
    processor.handle([tick_to_record(t) for k in range(30) for t in window_ticks(k)])
    processor.finish()
    spike = START + SPIKE * FIVE
    store.upsert(
        alerts,
        [
            {
                "alert_id": "a1", "symbol": "AAPL", "asset_type": "stock", "kind": "market",
                "opened_at": spike, "last_window_start": spike, "closed_at": spike + FIVE,
                "peak_severity": "high", "peak_abs_z": 19.0, "features": "price_spike",
                "direction": "price_spike:up", "window_count": 1, "market_event_id": None,
                "summary": "AAPL +2.0% in 5 min",
            }
        ],
    )  # fmt: skip
    store.close()
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


def test_drill_down_shows_the_hour_around_the_episode_and_why_it_fired(client):
    body = client.get("/api/alerts/a1/drill").json()
    assert body["alert"]["alert_id"] == "a1" and body["window_minutes"] == 5
    starts = [datetime.fromisoformat(w["window_start"]) for w in body["windows"]]
    # an hour either side of window 25: windows 13..37, of which 13..29 exist
    assert starts == [START + k * FIVE for k in range(13, 30)]
    assert [w["in_episode"] for w in body["windows"]] == [k == SPIKE for k in range(13, 30)]
    spike = body["windows"][SPIKE - 13]
    assert (spike["open"], spike["close"], spike["volume"]) == (100.0, 102.0, 2.0)
    assert spike["price_return_pct"] == pytest.approx(2.0)
    assert spike["price_return_pct_mean"] == pytest.approx(0.0, abs=1e-9)
    std = 0.1 * math.sqrt(20 / 19)
    assert spike["price_return_pct_std"] == pytest.approx(std)
    [reason] = body["reasons"]
    assert reason["window_start"].startswith("2024-03-04T16:35")  # 14:30 + 25 x 5 min
    assert (reason["feature"], reason["anomaly_type"], reason["unit"]) == (
        "price_return_pct",
        "price_spike",
        "%",
    )
    assert reason["value"] == pytest.approx(2.0)
    assert reason["std"] == pytest.approx(std)
    assert reason["z_score"] == pytest.approx(2.0 / std)
    assert reason["severity"] == "high"
    # rarity: windows 5..29 have a return z (5 earlier windows needed); only 25 reaches 19
    assert (reason["as_extreme"], reason["scored"]) == (1, 25)


def test_drill_down_of_an_unknown_alert_is_404(client):
    response = client.get("/api/alerts/nope/drill")
    assert response.status_code == 404 and "/api/alerts" in response.json()["detail"]
