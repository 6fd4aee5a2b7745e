"""The shapes of the JSON API's answers (pydantic models; the OpenAPI schema comes from them).

Kept apart from the queries that fill them (`queries`, `alerts`, `drill`, `workflow`), so a
reader of the API sees every field in one place. The workflow's request bodies (`NoteIn`,
`ActionIn`, `SilenceIn`) stay beside their routes, with the validators and limits they carry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class AnomalyOut(BaseModel):
    symbol: str
    asset_type: str
    window_start: datetime
    window_end: datetime
    anomaly_type: str
    value: float
    mean: float
    std: float
    z_score: float
    severity: str
    detected_at: datetime


class AnomalyPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AnomalyOut]
    next_cursor: str | None = None
    """Pass as `cursor` for the next page (stable while anomalies arrive); null at the end."""


class WindowOut(BaseModel):
    symbol: str
    asset_type: str
    window_start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    volume_delta: float | None
    tick_count: int
    vwap: float | None
    price_return_pct: float
    price_return_pct_mean: float | None
    price_return_pct_std: float | None
    volatility: float | None
    volatility_pct: float | None


class WindowPage(BaseModel):
    limit: int
    items: list[WindowOut]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null when this page reached the newest window.
    Keep the last cursor to ask later for windows closed since."""


class LatestPrice(BaseModel):
    symbol: str
    asset_type: str
    close: float
    window_start: datetime
    change_pct: float | None
    """Change from the first open in the range to the latest close, percent."""


class Ranked(BaseModel):
    symbol: str
    asset_type: str
    total: int
    high: int
    medium: int
    low: int


class HourBucket(BaseModel):
    hour: datetime
    total: int
    by_severity: dict[str, int]
    by_type: dict[str, int]


class ZBin(BaseModel):
    low: float
    high: float
    count: int
    label: str
    """How to name the bin: the end bins also hold every z beyond them ("≥ 9", "< -9")."""


class Summary(BaseModel):
    start: datetime | None
    end: datetime | None
    total: int
    high: int
    windows: int
    symbols: int
    by_type: dict[str, int]
    by_severity: dict[str, int]
    by_symbol: list[Ranked]
    by_asset_severity: dict[str, dict[str, int]]
    hourly: list[HourBucket]
    z_histogram: list[ZBin]


class VolPoint(BaseModel):
    window_start: datetime
    value: float


class VolSeries(BaseModel):
    symbol: str
    asset_type: str
    points: list[VolPoint]
    latest: float | None


class SymbolInfo(BaseModel):
    symbol: str
    asset_type: str


class AlertState(BaseModel):
    """What people did with one alert; every field null when nobody acted."""

    status: Literal["acknowledged", "resolved"] | None = None
    status_by: str | None = None
    status_at: datetime | None = None
    verdict: Literal["true_positive", "false_positive"] | None = None
    verdict_by: str | None = None
    verdict_at: datetime | None = None
    snoozed_until: datetime | None = None
    snoozed_by: str | None = None
    snoozed: bool = False
    """Whether the snooze is still in force (wall clock)."""
    note: str | None = None
    """The latest note."""
    silenced: str | None = None
    """The active silence that mutes this alert's notices, described; null when none."""


class AlertOut(BaseModel):
    alert_id: str
    symbol: str
    asset_type: str
    kind: str
    opened_at: datetime
    last_window_start: datetime
    closed_at: datetime | None
    """Null while the episode is open."""
    peak_severity: str | None
    peak_abs_z: float
    features: list[str]
    direction: dict[str, str]
    """Per feature in `features`: `up` or `down` (the sign of its largest move)."""
    window_count: int
    market_event_id: str | None
    summary: str
    state: AlertState = Field(default_factory=AlertState)
    """What people did with it (acknowledged, resolved, snoozed, marked, silenced)."""


class AlertPage(BaseModel):
    total: int
    limit: int
    items: list[AlertOut]
    next_cursor: str | None
    """Pass as `cursor` for the next page; null at the end."""


class EpisodeWindow(BaseModel):
    window_start: datetime
    close: float
    price_return_pct: float
    volume: float | None
    volatility: float | None
    price_return_pct_z: float | None
    volume_z: float | None
    volatility_z: float | None
    anomalies: list[str]
    """Anomaly types detected in this window (per-window z-score detector)."""


class DrillWindow(BaseModel):
    window_start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    price_return_pct: float
    price_return_pct_mean: float | None
    price_return_pct_std: float | None
    in_episode: bool


class Reason(BaseModel):
    window_start: datetime
    feature: str
    """The window column scored: price_return_pct, volume or volatility."""
    anomaly_type: str
    value: float
    unit: str
    """Of value, mean and std: % (return), shares or units (volume), USD (volatility)."""
    mean: float
    std: float
    z_score: float
    severity: str
    as_extreme: int
    """Windows of this symbol whose |z| for this feature is at least this one's (it included)."""
    scored: int
    """Windows of this symbol with a z-score for this feature."""


class Drill(BaseModel):
    alert: AlertOut
    window_minutes: int
    windows: list[DrillWindow]
    reasons: list[Reason]
