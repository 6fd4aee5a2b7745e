"""/metrics of `tickwatch serve` (no pipeline in the process) reads what the store holds.

The store is filled by the real pipeline from hand-made ticks on 2024-03-04 (UTC):
AAPL at 10:00, 10:05, 10:10, 10:22, then 10:01 (late: the watermark is 10:12 by then),
bitcoin at 10:00 and 10:05, and one record without fields (invalid). Windows: AAPL 10:00,
10:05, 10:10, 10:20 and bitcoin 10:00, 10:05; the newest ends at 10:25.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from tickwatch.config import Settings
from tickwatch.model import Anomaly, AnomalyType, AssetType, Severity, Tick
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts
from tickwatch.web import create_app

DAY = datetime(2024, 3, 4, tzinfo=UTC)
NOW = DAY + timedelta(hours=11)


def at(hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes))


def tick(symbol: str, hhmm: str, asset: AssetType = AssetType.STOCK) -> dict[str, object]:
    moment = at(hhmm)
    return tick_to_record(Tick("test", asset, symbol, moment, moment, 100.0, 1.0))


def episode(alert_id: str, kind: str, severity: str | None, closed: bool) -> dict[str, object]:
    start = at("10:05")
    return {
        "alert_id": alert_id, "symbol": "AAPL", "asset_type": "stock", "kind": kind,
        "opened_at": start, "last_window_start": start,
        "closed_at": start + timedelta(minutes=5) if closed else None,
        "peak_severity": severity, "peak_abs_z": 6.0, "features": "price_spike",
        "direction": "price_spike:up", "window_count": 1, "market_event_id": None,
        "summary": "test",
    }  # fmt: skip


def anomaly(kind: AnomalyType, severity: Severity, hhmm: str) -> Anomaly:
    start = at(hhmm)
    end = start + timedelta(minutes=5)
    return Anomaly("AAPL", AssetType.STOCK, start, end, kind, 1.0, 0.0, 0.1, 10.0, severity, NOW)


def test_serve_metrics_count_what_the_store_holds(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store_url=None)
    store = SqlStore(settings.database_url)
    processor = Processor(settings, store, None, clock=lambda: NOW)
    processor.handle([tick("AAPL", t) for t in ("10:00", "10:05", "10:10", "10:22")])
    processor.handle([tick("AAPL", "10:01"), {"symbol": "X"}])
    processor.handle([tick("bitcoin", t, AssetType.CRYPTO) for t in ("10:00", "10:05")])
    processor.finish()
    store.write(
        [],
        [
            anomaly(AnomalyType.PRICE_SPIKE, Severity.HIGH, "10:05"),
            anomaly(AnomalyType.PRICE_SPIKE, Severity.HIGH, "10:10"),
            anomaly(AnomalyType.VOLUME_SURGE, Severity.LOW, "10:10"),
        ],
    )
    store.upsert(
        alerts,
        [
            episode("open-high", "market", "high", closed=False),
            episode("open-fault", "data_fault", None, closed=False),
            episode("closed", "market", "low", closed=True),
        ],
    )
    store.close()
    with TestClient(create_app(settings, clock=lambda: NOW), base_url="http://127.0.0.1") as c:
        text = c.get("/metrics").text
    for line in (
        "tickwatch_store_up 1.0",
        'tickwatch_store_windows{asset_type="stock"} 4.0',
        'tickwatch_store_windows{asset_type="crypto"} 2.0',
        "tickwatch_store_symbols 2.0",
        'tickwatch_store_anomalies{anomaly_type="price_spike",severity="high"} 2.0',
        'tickwatch_store_anomalies{anomaly_type="volume_surge",severity="low"} 1.0',
        'tickwatch_store_alerts_open{kind="market",severity="high"} 1.0',
        'tickwatch_store_alerts_open{kind="data_fault",severity="none"} 1.0',
        'tickwatch_store_dead_letters{kind="invalid"} 1.0',
        'tickwatch_store_dead_letters{kind="late"} 1.0',
        "tickwatch_store_last_window_age_seconds 2100.0",  # 11:00 - 10:25
    ):
        assert line in text, line
    assert 'tickwatch_store_alerts_open{kind="market",severity="low"}' not in text  # closed


def test_a_store_that_does_not_answer_reads_down(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store_url=None)
    app = create_app(settings, clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        with SqlStore(settings.database_url).engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alerts")
        text = c.get("/metrics").text
    assert "tickwatch_store_up 0.0" in text and "tickwatch_store_windows" not in text
