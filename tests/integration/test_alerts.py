"""Webhook notices against a real HTTP server on loopback (pytest-httpserver)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select

from tickwatch.alerts import WebhookNotifier, alert_notifications
from tickwatch.config import load_settings
from tickwatch.engine.episodes import Notice
from tickwatch.model import Severity
from tickwatch.runtime import Runtime
from tickwatch.sources.replay import ReplaySource
from tickwatch.store.sql import connect

T0 = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)  # the notifier's wall clock: T0's alert is fresh


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = connect(f"sqlite:///{tmp_path / 'alerts.db'}")
    yield db
    db.dispose()


def opened(symbol: str = "AAPL", minutes: int = 0, severity: str = "high") -> Notice:
    start = T0 + timedelta(minutes=minutes)
    row = {
        "alert_id": f"{symbol}-{minutes}",
        "symbol": symbol,
        "asset_type": "stock",
        "kind": "market",
        "opened_at": start,
        "last_window_start": start,
        "closed_at": None,
        "peak_severity": severity,
        "peak_abs_z": 7.2,
        "features": "volume_surge",
        "direction": "volume_surge:up",
        "window_count": 1,
        "market_event_id": None,
        "summary": f"{symbol} +0.24% on 13.2x usual volume, Mar 04 10:00 ET",
    }
    return Notice("opened", row, text=str(row["summary"]))


def deliveries(engine: Engine) -> list[tuple[str | None, str, int, int | None]]:
    query = select(
        alert_notifications.c.symbol,
        alert_notifications.c.status,
        alert_notifications.c.attempts,
        alert_notifications.c.http_status,
    ).order_by(alert_notifications.c.id)
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def notifier(httpserver: HTTPServer, engine: Engine, **options: object) -> WebhookNotifier:
    options = {"backoff_seconds": 0.01, "clock": lambda: NOW, **options}
    return WebhookNotifier(httpserver.url_for("/hook"), engine, **options)  # type: ignore[arg-type]


def test_json_payload(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    delivery = notifier(httpserver, engine).notify(opened())
    assert delivery is not None and delivery.status == "sent"
    ((request, _),) = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.data)
    assert body["kind"] == "opened"
    assert body["text"] == "AAPL +0.24% on 13.2x usual volume, Mar 04 10:00 ET"
    assert body["alert"]["alert_id"] == "AAPL-0" and body["alert"]["peak_severity"] == "high"
    assert datetime.fromisoformat(body["alert"]["opened_at"]) == T0
    assert deliveries(engine) == [("AAPL", "sent", 1, 200)]


def test_market_event_is_one_message(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    event = {"event_id": "e1", "asset_type": "crypto", "window_start": T0,
             "last_window_start": T0, "symbols": 7, "active_symbols": 10, "direction": "down",
             "median_move_pct": -2.3, "summary": "market-wide: 7 of 10 crypto down"}  # fmt: skip
    notice = Notice("market_event", event=event, text="market-wide: 7 of 10 crypto down")
    assert notifier(httpserver, engine, fmt="slack").notify(notice) is not None
    ((request, _),) = httpserver.log
    assert json.loads(request.data) == {
        "text": ":rotating_light: tickwatch market-wide: 7 of 10 crypto down"
    }


def test_history_is_recorded_not_sent_unless_backfill(
    httpserver: HTTPServer, engine: Engine
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    late = NOW + timedelta(days=1)  # a day after the window: history (warm start, replay)
    hook = notifier(httpserver, engine, clock=lambda: late)
    delivery = hook.notify(opened())
    assert delivery is not None and delivery.status == "suppressed"
    assert delivery.error is not None and delivery.error.startswith("history")
    assert httpserver.log == []
    backfill = notifier(httpserver, engine, clock=lambda: late, backfill=True)
    assert backfill.notify(opened()) is not None and len(httpserver.log) == 1


def test_slack_format(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("ok")
    notifier(httpserver, engine, fmt="slack").notify(opened())
    ((request, _),) = httpserver.log
    body = json.loads(request.data)
    assert body == {"text": ":rotating_light: tickwatch " + opened().text}


def test_below_min_severity_is_not_sent(httpserver: HTTPServer, engine: Engine) -> None:
    hook = notifier(httpserver, engine, min_severity=Severity.MEDIUM)
    assert hook.notify(opened(severity=Severity.LOW.value)) is None
    assert httpserver.log == []
    assert deliveries(engine) == []


def test_cooldown_per_symbol(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    late = T0 + timedelta(minutes=40)
    hook = notifier(
        httpserver,
        engine,
        cooldown=timedelta(minutes=30),
        clock=lambda: late,
        fresh=timedelta(hours=1),
    )
    hook.notify(opened("AAPL", 0))
    hook.notify(opened("AAPL", 10))  # a new episode 10 minutes later: suppressed
    hook.notify(opened("MSFT", 10))  # another symbol has its own cooldown
    hook.notify(opened("AAPL", 30))  # 30 minutes after the last sent one: sent again
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
    delivery = notifier(httpserver, engine, attempts=4).notify(opened())
    assert delivery is not None and (delivery.status, delivery.attempts) == ("sent", 3)
    assert len(httpserver.log) == 3
    httpserver.check_assertions()
    assert deliveries(engine) == [("AAPL", "sent", 3, 200)]


def test_gives_up_after_the_last_attempt_and_records_it(
    httpserver: HTTPServer, engine: Engine
) -> None:
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    hook = notifier(httpserver, engine, attempts=3)
    assert hook.notify(opened()) == hook_failed(3, 503)
    # a failed alert does not start the cooldown: the next one is tried again
    assert hook.notify(opened(minutes=5)) == hook_failed(3, 503)
    assert len(httpserver.log) == 6


def hook_failed(attempts: int, status: int) -> object:
    from tickwatch.alerts import Delivery

    return Delivery("failed", attempts, status, f"ServerError: HTTP {status}")


def test_4xx_is_not_retried(httpserver: HTTPServer, engine: Engine) -> None:
    httpserver.expect_request("/hook").respond_with_data("no such hook", status=404)
    delivery = notifier(httpserver, engine).notify(opened())
    assert delivery is not None and (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == "no such hook"


def surge_file(tmp_path: Path) -> Path:
    """One crypto symbol, 30 calm windows of two ticks, volume x10 in window 25."""
    lines = []
    for i in range(30):
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
    return ticks


def run_replay(settings: object, ticks: Path) -> None:
    runtime = Runtime(settings, [ReplaySource([ticks])])  # type: ignore[arg-type]
    runtime.start()
    deadline = time.monotonic() + 30
    while not runtime.sources_finished() and time.monotonic() < deadline:
        time.sleep(0.05)  # the replay source runs in its own supervised thread
    runtime.shutdown()


def test_runtime_sends_alert_notices_from_the_bus(httpserver: HTTPServer, tmp_path: Path) -> None:
    """The embedded runtime: ticks -> engine -> alert stage -> market_alerts -> webhook. The
    data is from 2024, so only ALERT_BACKFILL=true sends it; one episode, one message."""
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    settings = load_settings(
        data_dir=tmp_path / "data",
        alert_webhook_url=httpserver.url_for("/hook"),
        alert_min_severity="low",
        alert_backfill=True,
    )
    run_replay(settings, surge_file(tmp_path))
    ((request, _),) = httpserver.log
    body = json.loads(request.data)
    assert body["kind"] == "opened"
    assert body["alert"]["symbol"] == "X" and body["alert"]["features"] == "volume_surge"
    assert datetime.fromisoformat(body["alert"]["opened_at"]) == T0 + timedelta(minutes=125)
    assert deliveries(connect(settings.database_url)) == [("X", "sent", 1, 200)]


def test_runtime_does_not_notify_history(httpserver: HTTPServer, tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path / "data",
        alert_webhook_url=httpserver.url_for("/hook"),
        alert_min_severity="low",
    )
    run_replay(settings, surge_file(tmp_path))
    assert httpserver.log == []
    assert deliveries(connect(settings.database_url)) == [("X", "suppressed", 0, None)]
