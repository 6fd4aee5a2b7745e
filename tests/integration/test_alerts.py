"""Webhook alerts against a real HTTP server on loopback (pytest-httpserver)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select

from tickwatch.alerts import WebhookNotifier, alert_deliveries
from tickwatch.config import load_settings
from tickwatch.model import Anomaly, AnomalyType, AssetType, Severity
from tickwatch.runtime import Runtime
from tickwatch.sources.replay import ReplaySource
from tickwatch.store.sql import connect

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = connect(f"sqlite:///{tmp_path / 'alerts.db'}")
    yield db
    db.dispose()


def anomaly(symbol: str = "AAPL", minutes: int = 0, severity: Severity = Severity.HIGH) -> Anomaly:
    start = T0 + timedelta(minutes=minutes)
    return Anomaly(
        symbol=symbol,
        asset_type=AssetType.STOCK,
        window_start=start,
        window_end=start + timedelta(minutes=5),
        anomaly_type=AnomalyType.VOLUME_SURGE,
        value=12000.0,
        mean=1000.0,
        std=200.0,
        z_score=55.0,
        severity=severity,
        detected_at=T0 + timedelta(minutes=6),
    )


def deliveries(engine: Engine) -> list[tuple[str, str, int, int | None]]:
    query = select(
        alert_deliveries.c.symbol,
        alert_deliveries.c.status,
        alert_deliveries.c.attempts,
        alert_deliveries.c.http_status,
    ).order_by(alert_deliveries.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def notifier(httpserver: HTTPServer, engine: Engine, **options: object) -> WebhookNotifier:
    options = {"backoff_seconds": 0.01, **options}
    return WebhookNotifier(httpserver.url_for("/hook"), engine, **options)  # type: ignore[arg-type]


def test_json_payload(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    delivery = notifier(httpserver, engine).notify(anomaly())
    assert delivery is not None and delivery.status == "sent"
    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.data)
    assert body["symbol"] == "AAPL"
    assert body["anomaly_type"] == "volume_surge"
    assert body["severity"] == "high"
    assert (body["value"], body["mean"], body["std"], body["z_score"]) == (
        12000.0,
        1000.0,
        200.0,
        55.0,
    )
    assert datetime.fromisoformat(body["window_start"]) == T0
    assert body["text"].startswith("HIGH volume_surge AAPL (stock): 12000 vs mean 1000, z +55.00")
    assert deliveries(engine) == [("AAPL", "sent", 1, 200)]


def test_slack_format(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    notifier(httpserver, engine, fmt="slack").notify(anomaly())
    ((request, _),) = httpserver.log
    body = json.loads(request.data)
    assert list(body) == ["text"]
    assert "HIGH volume_surge AAPL" in body["text"]


def test_below_min_severity_is_not_sent(httpserver: HTTPServer, engine: Engine) -> None:
    hook = notifier(httpserver, engine, min_severity=Severity.MEDIUM)
    assert hook.notify(anomaly(severity=Severity.LOW)) is None
    assert httpserver.log == []
    assert deliveries(engine) == []


def test_cooldown_per_symbol(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    hook = notifier(httpserver, engine, cooldown=timedelta(minutes=30))
    hook.notify(anomaly("AAPL", 0))
    hook.notify(anomaly("AAPL", 10))  # same event, 10 minutes later: suppressed
    hook.notify(anomaly("MSFT", 10))  # another symbol has its own cooldown
    hook.notify(anomaly("AAPL", 30))  # 30 minutes after the last sent one: sent again
    assert len(httpserver.log) == 3
    assert deliveries(engine) == [
        ("AAPL", "sent", 1, 200),
        ("AAPL", "suppressed", 0, None),
        ("MSFT", "sent", 1, 200),
        ("AAPL", "sent", 1, 200),
    ]


def test_retry_on_500_then_success(httpserver: HTTPServer, engine: Engine) -> None:
    for _ in range(2):
        httpserver.expect_ordered_request("/hook").respond_with_data("busy", status=500)
    httpserver.expect_ordered_request("/hook").respond_with_data("ok")
    delivery = notifier(httpserver, engine, attempts=4).notify(anomaly())
    assert delivery is not None and (delivery.status, delivery.attempts) == ("sent", 3)
    assert len(httpserver.log) == 3
    httpserver.check_assertions()
    assert deliveries(engine) == [("AAPL", "sent", 3, 200)]


def test_gives_up_after_the_last_attempt_and_records_it(
    httpserver: HTTPServer, engine: Engine
) -> None:
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    hook = notifier(httpserver, engine, attempts=3)
    assert hook.notify(anomaly()) == hook_failed(3, 503)
    # a failed alert does not start the cooldown: the next one is tried again
    assert hook.notify(anomaly(minutes=5)) == hook_failed(3, 503)
    assert len(httpserver.log) == 6


def hook_failed(attempts: int, status: int) -> object:
    from tickwatch.alerts import Delivery

    return Delivery("failed", attempts, status, f"ServerError: HTTP {status}")


def test_4xx_is_not_retried(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_request("/hook").respond_with_data("no such hook", status=404)
    delivery = notifier(httpserver, engine).notify(anomaly())
    assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == "no such hook"


def test_runtime_sends_anomalies_from_the_bus(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded runtime: replayed ticks -> engine -> market_anomalies topic -> webhook."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    lines = []
    for i in range(30):  # one crypto symbol, calm volume, then a surge in window 25
        start = T0 + timedelta(minutes=5 * i)
        for second, price in ((0, 100.0), (60, 100.0 + (0.1, -0.1, 0.2, -0.2, 0.15)[i % 5])):
            volume = (1000.0 + (10, -10, 20, -20, 0)[i % 5]) * (10 if i == 25 else 1)
            moment = (start + timedelta(seconds=second)).isoformat()
            lines.append(json.dumps({
                "source": "test", "asset_type": "crypto", "symbol": "X", "event_time": moment,
                "price": price, "volume": volume,
            }))  # fmt: skip
    ticks = tmp_path / "ticks.jsonl"
    ticks.write_text("\n".join(lines) + "\n")
    settings = load_settings(
        data_dir=tmp_path / "data",
        alert_webhook_url=httpserver.url_for("/hook"),
        alert_min_severity="low",
    )
    runtime = Runtime(settings, [ReplaySource([ticks])])
    runtime.start()
    deadline = time.monotonic() + 30
    while not runtime.sources_finished() and time.monotonic() < deadline:
        time.sleep(0.05)  # the replay source runs in its own supervised thread
    runtime.shutdown()
    ((request, _),) = httpserver.log
    body = json.loads(request.data)
    assert (body["symbol"], body["anomaly_type"]) == ("X", "volume_surge")
    assert datetime.fromisoformat(body["window_start"]) == T0 + timedelta(minutes=125)
    assert deliveries(connect(settings.database_url)) == [("X", "sent", 1, 200)]
