"""Silences and snoozes mute webhook notices, against a real HTTP server on loopback.

The notifier's wall clock is NOW (test_alerts: T0 + 10 min = 15:10, T0's alerts are fresh); a
silence made at NOW - 5 min for 60 min is in force at NOW and over at NOW + 1 h.
"""

from __future__ import annotations

from datetime import timedelta

from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, insert, select

from tests.integration.test_alerts import NOW, T0, deliveries, engine, notifier, opened
from tickwatch.alerts import alert_notifications
from tickwatch.engine.episodes import Notice
from tickwatch.store import workflow
from tickwatch.store.alert_rows import alerts

__all__ = ["engine"]  # the fixture, shared with test_alerts
MADE = NOW - timedelta(minutes=5)


def errors(engine: Engine) -> list[str | None]:
    query = select(alert_notifications.c.error).order_by(alert_notifications.c.id)
    with engine.connect() as conn:
        return list(conn.scalars(query))


def test_a_silenced_symbol_is_recorded_suppressed_and_not_sent(
    httpserver: HTTPServer, engine: Engine
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sender = notifier(httpserver, engine)
    ends = MADE + timedelta(minutes=60)
    workflow.add_silence(engine, "AAPL", None, ends, "ana", "earnings call", MADE)

    muted = sender.notify(opened("AAPL"))
    assert muted is not None and muted.status == "suppressed"
    reason = "silenced: symbol AAPL until 2024-03-04T16:05:00+00:00 by ana: earnings call"
    assert muted.error == reason
    assert httpserver.log == []  # nothing reached the webhook
    assert sender.notify(opened("MSFT")) is not None  # another symbol is sent
    assert len(httpserver.log) == 1
    assert deliveries(engine) == [("AAPL", "suppressed", 0, None), ("MSFT", "sent", 1, 200)]
    assert errors(engine) == [reason, None]


def test_a_silence_ends_and_a_lifted_silence_mutes_nothing(
    httpserver: HTTPServer, engine: Engine
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    later = NOW + timedelta(hours=1)  # past the silence's end; T0 + 70 min is still fresh
    ends = MADE + timedelta(minutes=60)
    workflow.add_silence(notifier(httpserver, engine).engine, "AAPL", None, ends, "ana", "", MADE)
    after = notifier(httpserver, engine, clock=lambda: later)
    assert after.notify(opened("AAPL", minutes=60)).status == "sent"  # type: ignore[union-attr]

    made = workflow.add_silence(engine, "TSLA", None, ends, "ana", "", MADE)
    workflow.lift_silence(engine, made.silence_id, "bo", "over", NOW - timedelta(minutes=1))
    assert notifier(httpserver, engine).notify(opened("TSLA")).status == "sent"  # type: ignore[union-attr]


def test_a_kind_silence_matches_the_feature_and_market_events(
    httpserver: HTTPServer, engine: Engine
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sender = notifier(httpserver, engine)
    ends = MADE + timedelta(minutes=60)
    workflow.add_silence(engine, None, "volume_surge", ends, "ana", "", MADE)
    # opened() alerts carry the feature volume_surge, whatever the symbol
    assert sender.notify(opened("MSFT")).status == "suppressed"  # type: ignore[union-attr]
    event = {"event_id": "e1", "asset_type": "crypto", "last_window_start": T0}
    notice = Notice("market_event", event=event, text="market-wide")
    assert sender.notify(notice).status == "sent"  # type: ignore[union-attr]
    workflow.add_silence(engine, None, "market", ends, "ana", "", MADE)
    assert sender.notify(notice).status == "suppressed"  # type: ignore[union-attr]
    assert len(httpserver.log) == 1


def test_a_snoozed_alert_is_suppressed_until_its_time(
    httpserver: HTTPServer, engine: Engine
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    sender = notifier(httpserver, engine)
    notice = opened("AAPL")
    alerts.create(engine, checkfirst=True)
    with engine.begin() as conn:
        conn.execute(insert(alerts), [notice.alert])
    until = NOW + timedelta(minutes=20)
    workflow.act(engine, "AAPL-0", "snooze", "ana", "", MADE, until)
    escalated = Notice("escalated", notice.alert, text="worse")
    muted = sender.notify(escalated)
    assert muted is not None and muted.status == "suppressed"
    assert muted.error == "snoozed: until 2024-03-04T15:30:00+00:00 by ana"
    woken = notifier(httpserver, engine, clock=lambda: until)
    assert woken.notify(escalated).status == "sent"  # type: ignore[union-attr]
