"""Webhook notifications: alert episodes and market-wide events, POSTed, each delivery recorded.

Off unless ALERT_WEBHOOK_URL is set. The alert stage (`tickwatch.alerting`) publishes notices
on the `market_alerts` topic; the runtime hands each to a `WebhookNotifier`:

1. an alert opened (once per episode; a market-wide move is one `market_event` notice, not
   one per symbol) or escalated to a higher severity (at most once per alert);
2. below ALERT_MIN_SEVERITY: ignored (not recorded);
3. history: an alert whose last window ended more than ALERT_FRESH_MINUTES before the wall
   clock (a warm start, a backfill, a restart, a replay) is recorded as `suppressed`, not sent,
   unless ALERT_BACKFILL=true. Alerts themselves come from market time only; only this
   decision reads the clock;
4. muted by a person (`store.workflow`): a silence in force on the wall clock that matches
   the symbol or kind, or a snooze of that alert: `suppressed` with the reason
   (`silenced: ...`, `snoozed: ...`), visible in the record and in `GET /api/silences`;
5. within ALERT_COOLDOWN_MINUTES of market time after the last opening sent for the same
   symbol: `suppressed` (a flapping episode is not news twice);
6. otherwise POSTed: ALERT_FORMAT=json sends `{"kind", "text", "alert" | "market_event"}`;
   `slack` sends `{"text": ...}`, the body a Slack incoming webhook expects. A 5xx answer, a
   timeout or a connection error is retried with exponential backoff (tenacity), at most
   ALERT_RETRIES attempts in all; a 4xx is not retried (the request itself is wrong). The
   outcome is recorded as `sent` or `failed` with the attempts, HTTP status and error.

The record is the `alert_notifications` table on the SQL store's metadata. A failed webhook
never stops the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import Column, Engine, Index, Integer, String, Table, Text, insert
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from tickwatch.clock import utc_now
from tickwatch.config import Settings
from tickwatch.engine.episodes import Notice
from tickwatch.model import Severity
from tickwatch.store.sql import UtcDateTime, metadata
from tickwatch.store.workflow import suppression
from tickwatch.store.workflow_rows import WORKFLOW_TABLES

log = logging.getLogger(__name__)

ALERT_NOTIFICATIONS = "alert_notifications"
_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}

alert_notifications = Table(
    ALERT_NOTIFICATIONS,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # opened | escalated | market_event
    Column("alert_id", String(32)),
    Column("event_id", String(32)),
    Column("symbol", String(64)),
    Column("severity", String(8)),
    Column("text", Text, nullable=False),
    Column("status", String(12), nullable=False),  # sent | failed | suppressed
    Column("attempts", Integer, nullable=False),
    Column("http_status", Integer),
    Column("error", Text),
    Column("delivered_at", UtcDateTime, nullable=False),
    Index("ix_alert_notifications_delivered_at", "delivered_at"),
)


class ServerError(Exception):
    """A 5xx answer: worth another attempt."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


@dataclass(frozen=True, slots=True)
class Delivery:
    status: str
    attempts: int
    http_status: int | None = None
    error: str | None = None


def payload(notice: Notice, fmt: str) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": f":rotating_light: tickwatch {notice.text}"}
    body: dict[str, Any] = {"kind": notice.kind, "text": notice.text}
    if notice.alert is not None:
        body["alert"] = notice.alert
    if notice.event is not None:
        body["market_event"] = notice.event
    return body


def _moment(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return None


class WebhookNotifier:
    def __init__(
        self,
        url: str,
        engine: Engine,
        fmt: str = "json",
        min_severity: Severity = Severity.HIGH,
        cooldown: timedelta = timedelta(minutes=30),
        attempts: int = 4,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
        fresh: timedelta = timedelta(minutes=30),
        backfill: bool = False,
        window: timedelta = timedelta(minutes=5),
    ) -> None:
        self.url = url
        self.engine = engine
        self.fmt = fmt
        self.min_rank = _RANK[min_severity]
        self.cooldown = cooldown
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.clock = clock
        self.fresh = fresh
        self.backfill = backfill
        self.window = window
        self.client = httpx.Client(timeout=timeout_seconds)
        self.last_sent: dict[str, datetime] = {}
        for table in (alert_notifications, *WORKFLOW_TABLES):
            table.create(engine, checkfirst=True)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> WebhookNotifier | None:
        """The notifier the settings ask for, or None when ALERT_WEBHOOK_URL is empty."""
        url = settings.alert_webhook_url
        if url is None or not url.get_secret_value():
            return None
        return cls(
            url.get_secret_value(),
            engine,
            fmt=settings.alert_format,
            min_severity=Severity(settings.alert_min_severity),
            cooldown=timedelta(minutes=settings.alert_cooldown_minutes),
            attempts=settings.alert_retries,
            fresh=timedelta(minutes=settings.alert_fresh_minutes),
            backfill=settings.alert_backfill,
            window=settings.window,
        )

    def notify(self, notice: Notice) -> Delivery | None:
        """Send (or suppress) one notice and record it; None when below the severity."""
        row: Mapping[str, Any] = notice.alert or notice.event or {}
        severity = row.get("peak_severity")
        if notice.alert is not None and _RANK.get(Severity(severity or "low"), 0) < self.min_rank:
            return None
        last = _moment(row.get("last_window_start"))
        symbol = str(row.get("symbol") or row.get("asset_type") or "")
        delivery: Delivery | None = None
        stale = last is not None and last + self.window < self.clock() - self.fresh
        if stale and not self.backfill and last is not None:
            delivery = Delivery("suppressed", 0, error=f"history: last window {last.isoformat()}")
        elif (muted := suppression(self.engine, row, self.clock())) is not None:
            delivery = Delivery("suppressed", 0, error=muted)
        elif notice.kind == "opened" and last is not None:
            previous = self.last_sent.get(symbol)
            if previous is not None and abs(last - previous) < self.cooldown:
                delivery = Delivery("suppressed", 0, error=f"cooldown since {previous.isoformat()}")
        if delivery is None:
            delivery = self._post(notice, symbol)
            if delivery.status == "sent" and notice.kind == "opened" and last is not None:
                self.last_sent[symbol] = last
        self._record(notice, delivery)
        return delivery

    def _post(self, notice: Notice, symbol: str) -> Delivery:
        body = orjson.dumps(payload(notice, self.fmt))
        headers = {"content-type": "application/json"}
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=60 * self.backoff_seconds),
            retry=retry_if_exception_type((ServerError, httpx.TransportError)),
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    response = self.client.post(self.url, content=body, headers=headers)
                    if response.status_code >= 500:
                        raise ServerError(response)
        except RetryError as exc:
            error = exc.last_attempt.exception()
            status = error.response.status_code if isinstance(error, ServerError) else None
            log.warning("notice for %s failed after %d attempts: %s", symbol, attempts, error)
            return Delivery("failed", attempts, status, f"{type(error).__name__}: {error}")
        if response.is_success:
            return Delivery("sent", attempts, response.status_code)
        log.warning("notice for %s refused: HTTP %d", symbol, response.status_code)
        return Delivery("failed", attempts, response.status_code, response.text[:500])

    def _record(self, notice: Notice, delivery: Delivery) -> None:
        alert = notice.alert or {}
        event = notice.event or {}
        row = {
            "kind": notice.kind,
            "alert_id": alert.get("alert_id"),
            "event_id": event.get("event_id") or alert.get("market_event_id"),
            "symbol": alert.get("symbol"),
            "severity": alert.get("peak_severity"),
            "text": notice.text,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "http_status": delivery.http_status,
            "error": delivery.error,
            "delivered_at": self.clock(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(alert_notifications), [row])

    def close(self) -> None:
        self.client.close()
