"""The shapes of the JSON API's answers (pydantic models; the OpenAPI schema comes from them).

Kept apart from the queries that fill them (`queries`), so a reader of the API sees every field
in one place.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
