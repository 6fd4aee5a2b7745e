"""Webhook alerts: anomalies at or above a severity, POSTed as JSON, each delivery recorded.

Off unless ALERT_WEBHOOK_URL is set. The runtime subscribes a `WebhookNotifier` to the
`market_anomalies` topic; for each anomaly:

1. below ALERT_MIN_SEVERITY: ignored (not recorded);
2. within ALERT_COOLDOWN_MINUTES of the last alert sent for the same symbol, measured in market
   time (window starts, so a backfill or a replay behaves like live data and tests never
   sleep): recorded as `suppressed`, not sent; one event spanning several windows and features
   fires once;
3. otherwise POSTed: ALERT_FORMAT=json sends the `market_anomalies` row plus a one-line `text`;
   `slack` sends `{"text": ...}`, the body a Slack incoming webhook expects. A 5xx answer, a
   timeout or a connection error is retried with exponential backoff (tenacity), at most
   ALERT_RETRIES attempts in all; a 4xx is not retried (the request itself is wrong). The
   outcome is recorded as `sent` or `failed` with the attempts, HTTP status and error.

The record is the `alert_deliveries` table on the SQL store's metadata, so it lives next to the
anomalies it refers to (SQLite or PostgreSQL alike). A failed webhook never stops the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
from tickwatch.model import Anomaly, Severity
from tickwatch.store.sql import UtcDateTime, metadata

log = logging.getLogger(__name__)

ALERT_DELIVERIES = "alert_deliveries"
_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3}

alert_deliveries = Table(
    ALERT_DELIVERIES,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("symbol", String(64), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("anomaly_type", String(24), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("status", String(12), nullable=False),  # sent | failed | suppressed
    Column("attempts", Integer, nullable=False),
    Column("http_status", Integer),
    Column("error", Text),
    Column("delivered_at", UtcDateTime, nullable=False),
    Index("ix_alert_deliveries_delivered_at", "delivered_at"),
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


def alert_text(anomaly: Anomaly) -> str:
    """One line a person reads: what, where, how far from normal."""
    return (
        f"{anomaly.severity.value.upper()} {anomaly.anomaly_type.value} {anomaly.symbol} "
        f"({anomaly.asset_type.value}): {anomaly.value:.6g} vs mean {anomaly.mean:.6g}, "
        f"z {anomaly.z_score:+.2f}, window {anomaly.window_start.isoformat()}"
    )


def payload(anomaly: Anomaly, fmt: str) -> dict[str, Any]:
    if fmt == "slack":
        return {"text": f":rotating_light: tickwatch {alert_text(anomaly)}"}
    return {**anomaly.as_row(), "text": alert_text(anomaly)}


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
    ) -> None:
        self.url = url
        self.engine = engine
        self.fmt = fmt
        self.min_rank = _RANK[min_severity]
        self.cooldown = cooldown
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.clock = clock
        self.client = httpx.Client(timeout=timeout_seconds)
        self.last_sent: dict[str, datetime] = {}
        alert_deliveries.create(engine, checkfirst=True)

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
        )

    def notify(self, anomaly: Anomaly) -> Delivery | None:
        """Send (or suppress) one anomaly and record it; None when below the severity."""
        if _RANK[anomaly.severity] < self.min_rank:
            return None
        last = self.last_sent.get(anomaly.symbol)
        if last is not None and abs(anomaly.window_start - last) < self.cooldown:
            delivery = Delivery("suppressed", 0, error=f"cooldown since {last.isoformat()}")
        else:
            delivery = self._post(anomaly)
            if delivery.status == "sent":
                self.last_sent[anomaly.symbol] = anomaly.window_start
        self._record(anomaly, delivery)
        return delivery

    def _post(self, anomaly: Anomaly) -> Delivery:
        body = orjson.dumps(payload(anomaly, self.fmt))
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
            log.warning(
                "alert for %s failed after %d attempts: %s", anomaly.symbol, attempts, error
            )
            return Delivery("failed", attempts, status, f"{type(error).__name__}: {error}")
        if response.is_success:
            return Delivery("sent", attempts, response.status_code)
        log.warning("alert for %s refused: HTTP %d", anomaly.symbol, response.status_code)
        return Delivery("failed", attempts, response.status_code, response.text[:500])

    def _record(self, anomaly: Anomaly, delivery: Delivery) -> None:
        row = {
            "symbol": anomaly.symbol,
            "window_start": anomaly.window_start,
            "anomaly_type": anomaly.anomaly_type.value,
            "severity": anomaly.severity.value,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "http_status": delivery.http_status,
            "error": delivery.error,
            "delivered_at": self.clock(),
        }
        with self.engine.begin() as conn:
            conn.execute(insert(alert_deliveries), [row])

    def close(self) -> None:
        self.client.close()
