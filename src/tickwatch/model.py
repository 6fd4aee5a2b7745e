"""The canonical data of tickwatch: ticks, windows, anomalies, and the names both engines share.

See DESIGN.md "Canonical definitions". All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Topic and table names, used by every bus, store, job and dashboard.
RAW_STOCK_TICKS = "raw_stock_ticks"
RAW_CRYPTO_TICKS = "raw_crypto_ticks"
CLEAN_MARKET_DATA = "clean_market_data"
MARKET_ANOMALIES = "market_anomalies"
DEAD_LETTERS = "dead_letters"
MARKET_ALERTS = "market_alerts"  # the bus topic of alert and market-event changes
# the source name of simulated ticks: the stores and /health tell simulated data apart by it
SIMULATED_SOURCE = "simulator"


class AssetType(StrEnum):
    STOCK = "stock"
    CRYPTO = "crypto"

    @property
    def raw_topic(self) -> str:
        return RAW_STOCK_TICKS if self is AssetType.STOCK else RAW_CRYPTO_TICKS


class AnomalyType(StrEnum):
    PRICE_SPIKE = "price_spike"
    VOLUME_SURGE = "volume_surge"
    VOLATILITY_BURST = "volatility_burst"


class Feature(StrEnum):
    """The three monitored window features; each name is also its column."""

    PRICE_RETURN = "price_return_pct"
    VOLUME = "volume"
    VOLATILITY = "volatility"

    @property
    def anomaly_type(self) -> AnomalyType:
        return _ANOMALY_TYPE[self]


_ANOMALY_TYPE = {
    Feature.PRICE_RETURN: AnomalyType.PRICE_SPIKE,
    Feature.VOLUME: AnomalyType.VOLUME_SURGE,
    Feature.VOLATILITY: AnomalyType.VOLATILITY_BURST,
}


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def severity_of(z: float, threshold: float, medium: float, high: float) -> Severity | None:
    """None for |z| <= threshold; low up to `medium`, medium up to `high`, high above."""
    magnitude = abs(z)
    if magnitude <= threshold:
        return None
    if magnitude <= medium:
        return Severity.LOW
    if magnitude <= high:
        return Severity.MEDIUM
    return Severity.HIGH


@dataclass(frozen=True, slots=True)
class Tick:
    """One market observation. A tick with open/high/low/close is a delivered bar."""

    source: str
    asset_type: AssetType
    symbol: str
    event_time: datetime
    ingest_time: datetime
    price: float
    volume: float | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None

    @property
    def is_bar(self) -> bool:
        return self.open is not None

    def observations(self) -> tuple[float, ...]:
        """The prices this tick contributes to its window, in order."""
        if self.open is not None:
            return (self.open, self.high, self.low, self.close)  # type: ignore[return-value]
        return (self.price,)


@dataclass(frozen=True, slots=True)
class Score:
    """A feature value judged against its baseline; z is None when it cannot be scored."""

    mean: float | None
    std: float | None
    z: float | None


NO_SCORE = Score(None, None, None)


@dataclass(frozen=True, slots=True)
class Window:
    """One closed 5-minute window of one symbol: a row of `clean_market_data`."""

    symbol: str
    asset_type: AssetType
    window_start: datetime
    window_end: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float | None
    tick_count: int
    vwap: float | None
    price_return_pct: float
    volatility: float | None
    scores: dict[Feature, Score] = field(default_factory=dict)

    def feature(self, feature: Feature) -> float | None:
        value: float | None = getattr(self, feature.value)
        return value

    def as_row(self) -> dict[str, object]:
        row: dict[str, object] = {
            "symbol": self.symbol,
            "asset_type": self.asset_type.value,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "tick_count": self.tick_count,
            "vwap": self.vwap,
            "price_return_pct": self.price_return_pct,
            "volatility": self.volatility,
        }
        for feature in Feature:
            score = self.scores.get(feature, NO_SCORE)
            row[f"{feature.value}_mean"] = score.mean
            row[f"{feature.value}_std"] = score.std
            row[f"{feature.value}_z"] = score.z
        return row


CLEAN_COLUMNS = tuple(
    Window("", AssetType.STOCK, EPOCH, EPOCH, 1, 1, 1, 1, None, 1, None, 0, None).as_row()
)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One feature of one window beyond the threshold: a row of `market_anomalies`."""

    symbol: str
    asset_type: AssetType
    window_start: datetime
    window_end: datetime
    anomaly_type: AnomalyType
    value: float
    mean: float
    std: float
    z_score: float
    severity: Severity
    detected_at: datetime

    def as_row(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "asset_type": self.asset_type.value,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "anomaly_type": self.anomaly_type.value,
            "value": self.value,
            "mean": self.mean,
            "std": self.std,
            "z_score": self.z_score,
            "severity": self.severity.value,
            "detected_at": self.detected_at,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    """Input that did not become part of a window, kept with its reason (dead letters).

    kind is "invalid" (could not become a Tick) or "late" (its window had closed).
    """

    kind: str
    reason: str
    payload: str
    source: str | None = None
    symbol: str | None = None
    received_at: datetime = EPOCH
