"""Typed settings, read once from the environment and `.env`, validated at start.

Every field's env name is its upper-cased name; `.env.example` mirrors this file.
A bad value raises `ConfigError` naming the variable and what is allowed.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tickwatch.engine.config import EngineConfig
from tickwatch.engine.detectors.registry import DetectorName
from tickwatch.errors import ConfigError

CommaList = Annotated[list[str], NoDecode]
CRYPTO_SOURCES = ("coingecko", "coinbase", "kraken", "binance")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", validate_default=True)

    # Sources (reference configuration)
    alpha_vantage_api_key: SecretStr = Field(
        SecretStr("demo"), description="Alpha Vantage key; 'demo' serves only IBM"
    )
    stock_symbols: CommaList = Field(
        ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"], description="stock tickers, comma-separated"
    )
    crypto_ids: CommaList = Field(
        ["bitcoin", "ethereum", "solana", "cardano", "ripple"],
        description="CoinGecko coin ids, comma-separated",
    )
    stock_poll_interval: int = Field(60, gt=0, description="seconds between stock polls")
    crypto_poll_interval: int = Field(30, gt=0, description="seconds between crypto polls")
    alpha_vantage_base_url: str = Field(
        "https://www.alphavantage.co/query", description="Alpha Vantage query endpoint"
    )
    alpha_vantage_calls_per_minute: int = Field(
        5, gt=0, description="Alpha Vantage calls allowed per minute (free tier: 5)"
    )
    alpha_vantage_calls_per_day: int = Field(
        25, gt=0, description="Alpha Vantage calls allowed per UTC day (free tier: 25)"
    )
    coingecko_base_url: str = Field(
        "https://api.coingecko.com/api/v3", description="CoinGecko API root"
    )
    coingecko_api_key: SecretStr | None = Field(
        None, description="optional CoinGecko demo key, sent as header x-cg-demo-api-key"
    )
    coingecko_calls_per_minute: int = Field(
        10, gt=0, description="CoinGecko calls per minute this process allows itself"
    )
    request_timeout: float = Field(10.0, gt=0, description="seconds before an HTTP request fails")
    # streaming trade feeds (tickwatch.sources.streams): which venue feeds each asset class
    crypto_source: str = Field(
        "coinbase",
        description="crypto feeds, comma-separated, each once: coingecko (polled), coinbase, "
        "kraken, binance (trade streams); with several, windows are their consolidated tape "
        "(volume summed, every venue's trades observed) and divergence compares the venues",
    )
    stock_source: Literal["alphavantage", "finnhub"] = Field(
        "alphavantage", description="stock feed: alphavantage (polled) or finnhub (trade stream)"
    )
    finnhub_api_key: SecretStr | None = Field(
        None, description="Finnhub key (free), needed when STOCK_SOURCE=finnhub"
    )
    coinbase_ws_url: str = Field(
        "wss://ws-feed.exchange.coinbase.com", description="Coinbase Exchange WebSocket feed"
    )
    coinbase_rest_url: str = Field(
        "https://api.exchange.coinbase.com", description="Coinbase Exchange REST root (backfill)"
    )
    kraken_ws_url: str = Field("wss://ws.kraken.com", description="Kraken WebSocket API v1")
    kraken_rest_url: str = Field(
        "https://api.kraken.com", description="Kraken REST root (backfill)"
    )
    binance_ws_url: str = Field(
        "wss://stream.binance.com:9443/ws", description="Binance spot WebSocket stream root"
    )
    binance_rest_url: str = Field(
        "https://api.binance.com", description="Binance spot REST root (backfill)"
    )
    finnhub_ws_url: str = Field("wss://ws.finnhub.io", description="Finnhub trade WebSocket")
    stream_queue_size: int = Field(
        100_000, gt=0, description="messages a stream holds for a slow consumer before dropping"
    )
    stream_backoff_max: float = Field(
        30.0, gt=0, description="longest wait in seconds between stream reconnects"
    )

    # Distributed stack (reference configuration)
    postgres_user: str = Field("marketuser", description="PostgreSQL user")
    postgres_password: SecretStr = Field(SecretStr("marketpass"), description="PostgreSQL password")
    postgres_db: str = Field("marketdb", description="PostgreSQL database")
    grafana_admin_user: str = Field("admin", description="Grafana admin user")
    grafana_admin_password: SecretStr = Field(SecretStr("admin"), description="Grafana password")
    airflow_admin_user: str = Field("admin", description="Airflow admin user")
    airflow_admin_password: SecretStr = Field(SecretStr("admin"), description="Airflow password")
    allow_default_admin: bool = Field(
        False, description="let compose start Grafana/Airflow with the password 'admin'"
    )

    # Engine (DESIGN.md canonical definitions)
    window_minutes: int = Field(5, gt=0, le=1440, description="tumbling window size, minutes")
    lookback_windows: int = Field(20, ge=2, description="completed windows in the baseline")
    min_history: int = Field(5, ge=2, description="non-null baseline values needed to score")
    z_threshold: float = Field(3.0, gt=0, description="|z| above this is an anomaly (low)")
    severity_medium: float = Field(4.0, gt=0, description="|z| above this is medium")
    severity_high: float = Field(5.0, gt=0, description="|z| above this is high")
    allowed_lateness_minutes: float = Field(10, ge=0, description="watermark lag, minutes")
    max_clock_skew_seconds: float = Field(
        300, ge=0, description="times this far after the receiving clock are rejected"
    )
    detector: DetectorName = Field(
        "zscore", description="anomaly detector: zscore, robust (median/MAD) or seasonal"
    )

    # Cross-venue divergence (one asset on two or more venues; docs/DETECTION.md)
    divergence_bps: float = Field(
        50, gt=0, description="price gap between two venues that counts as a divergence, bps"
    )
    divergence_seconds: float = Field(
        30, ge=0, description="a gap must last this long (event time) to be flagged, seconds"
    )
    divergence_fault_bps: float = Field(
        1000, gt=0, description="a gap this wide is a data fault whatever happens next, bps"
    )
    divergence_stale_seconds: float = Field(
        60, gt=0, description="a venue's last price is compared for this long, seconds"
    )

    # Runtime
    data_dir: Path = Field(Path("data"), description="SQLite file, Parquet lake, checkpoints")
    store_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///DATA_DIR/tickwatch.db"
    )
    bus: Literal["memory", "kafka"] = Field(
        "memory", description="message bus: memory (in process) or kafka"
    )
    kafka_bootstrap_servers: str = Field(
        "localhost:29092", description="Kafka brokers, host:port comma-separated (BUS=kafka)"
    )
    kafka_topic_partitions: int = Field(
        3, gt=0, description="partitions of the topics tickwatch creates (keyed by symbol)"
    )
    source: Literal["auto", "live", "simulate"] = Field(
        "auto", description="auto = live APIs when reachable, else the simulator"
    )
    sim_speed: float = Field(60, gt=0, description="simulator speed, x real time")
    sim_seed: int = Field(7, description="simulator random seed")
    sim_history_hours: float = Field(
        24, ge=0, description="simulated history backfilled at start-up, hours"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="logging")

    # Web dashboard and JSON API
    web_host: str = Field("127.0.0.1", description="address the dashboard and API listen on")
    web_port: int = Field(8000, ge=0, le=65535, description="dashboard and API port (0: any free)")
    web_allowed_hosts: str = Field(
        "",
        description="more Host names the web app answers, comma-separated "
        "(127.0.0.1, localhost and WEB_HOST always; guards against DNS rebinding)",
    )
    web_send_timeout: float = Field(
        30, gt=0, description="seconds a client may stall a response before it is dropped"
    )
    api_token: SecretStr = Field(
        SecretStr(""),
        description="token for API writes (acknowledge, silence...), sent as "
        "Authorization: Bearer; empty = the API is read-only",
    )

    # Alerts (webhook; off unless ALERT_WEBHOOK_URL is set)
    alert_webhook_url: SecretStr | None = Field(
        None, description="webhook that receives anomalies as JSON POSTs; empty = alerts off"
    )
    alert_format: Literal["json", "slack"] = Field(
        "json", description="json = the anomaly row; slack = Slack incoming-webhook text"
    )
    alert_min_severity: Literal["low", "medium", "high"] = Field(
        "high", description="lowest severity that is sent"
    )
    alert_cooldown_minutes: float = Field(
        30, ge=0, description="per symbol: no second alert within this much market time"
    )
    alert_retries: int = Field(4, ge=1, le=10, description="attempts per alert (5xx, timeouts)")

    # Alert scoring and episodes (docs/DETECTION.md)
    alert_z_open: float = Field(
        4.0, gt=0, description="alert score that opens an alert (robust z of a feature)"
    )
    alert_z_continue: float = Field(
        3.0, gt=0, description="alert score that keeps an open alert going"
    )
    alert_min_move_pct: float = Field(
        0.05, ge=0, description="a price alert needs a close-to-close move of at least this, %"
    )
    alert_memory_windows: int = Field(
        200, ge=10, description="windows of memory of the alert scales (exponential weighting)"
    )
    alert_level_windows: int = Field(
        78, ge=2, description="windows of memory of the expected volume and volatility level"
    )
    alert_session_alpha: float = Field(
        0.3, gt=0, le=1, description="weight of the newest session in time-of-day profiles"
    )
    alert_tail_factor: float = Field(
        1.5, ge=0, description="an alert must exceed this x the series' own recent 99th |z|"
    )
    alert_gap_windows: int = Field(
        12, ge=0, description="alerting windows this close (in windows) are one episode"
    )
    alert_market_min_symbols: int = Field(
        3, ge=2, description="symbols alerting together that make a market-wide event"
    )
    alert_market_fraction: float = Field(
        0.5, gt=0, le=1, description="share of a class's active symbols for a market event"
    )
    alert_restore_windows: int = Field(
        400, ge=0, description="stored windows per symbol replayed into alert state on restart"
    )
    alert_backfill: bool = Field(
        False, description="also notify alerts of history loaded at start-up or replayed"
    )
    alert_fresh_minutes: float = Field(
        30, ge=0, description="notify only alerts whose last window ended this recently"
    )

    # Operations: checks and restarts (tickwatch check, Airflow DAGs)
    freshness_minutes: float = Field(
        15, gt=0, description="fail when no new window closed for this long (market hours aware)"
    )
    max_consumer_lag: int = Field(
        10_000, ge=0, description="messages a consumer may trail a raw topic by before a warning"
    )
    max_abs_return_pct: float = Field(
        50, gt=0, description="a window return beyond this percentage is flagged as not sane"
    )
    checkpoint_retention_hours: float = Field(
        24, gt=0, description="stream checkpoints untouched this long are removed (never live)"
    )
    restart_backend: Literal["local", "docker"] = Field(
        "local", description="how a restart runs: local processes or the Docker Engine API"
    )
    docker_host: str = Field(
        "unix:///var/run/docker.sock",
        description="Docker Engine API address (restart_backend=docker)",
    )
    docker_container_prefix: str = Field(
        "tickwatch-", description="container name = prefix + service (producer-stock, ...)"
    )
    producer_stock_command: str = Field(
        "tickwatch produce stocks", description="command that starts the stock producer (local)"
    )
    producer_crypto_command: str = Field(
        "tickwatch produce crypto", description="command that starts the crypto producer (local)"
    )
    stream_job_command: str = Field(
        "", description="command line that starts the stream job (local restarts)"
    )

    @field_validator("stock_symbols", "crypto_ids", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("crypto_source", mode="before")
    @classmethod
    def _check_crypto_venues(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        venues = [part.strip() for part in value.split(",")]
        allowed = ", ".join(CRYPTO_SOURCES)
        for venue in venues:
            if venue not in CRYPTO_SOURCES:
                raise ValueError(f"unknown crypto source {venue!r}; allowed: {allowed}")
        twice = [venue for i, venue in enumerate(venues) if venue in venues[:i]]
        if twice:
            raise ValueError(f"{twice[0]!r} is listed twice; each of {allowed} at most once")
        return ",".join(venues)

    @property
    def crypto_venues(self) -> list[str]:
        """CRYPTO_SOURCE as its list of feeds, in the order given."""
        return self.crypto_source.split(",")

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        if not self.z_threshold < self.severity_medium < self.severity_high:
            raise ValueError(
                "need Z_THRESHOLD < SEVERITY_MEDIUM < SEVERITY_HIGH, got "
                f"{self.z_threshold} / {self.severity_medium} / {self.severity_high}"
            )
        if self.min_history > self.lookback_windows:
            raise ValueError(
                f"MIN_HISTORY ({self.min_history}) cannot exceed "
                f"LOOKBACK_WINDOWS ({self.lookback_windows})"
            )
        return self

    def secret_values(self) -> list[str]:
        """Every configured secret (keys, passwords, the password in STORE_URL), for masking."""
        values = [
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr)
        ]
        if self.store_url and (password := _url_password(self.store_url)):
            # as written, decoded and percent-encoded: an error may show any of them
            values += [password, unquote(password), quote(unquote(password), safe="")]
        return [v for v in values if len(v) >= 4 and v != "demo"]

    def mask(self, text: str) -> str:
        """`text` with every configured secret replaced by ***: for what is shown, not logged
        (a status line, an API body), where an upstream error may echo a key back."""
        for secret in self.secret_values():
            text = text.replace(secret, "***")
        return text

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    @property
    def allowed_lateness(self) -> timedelta:
        return timedelta(minutes=self.allowed_lateness_minutes)

    @property
    def max_clock_skew(self) -> timedelta:
        return timedelta(seconds=self.max_clock_skew_seconds)

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite:///{self.data_dir / 'tickwatch.db'}"

    def engine_config(self) -> EngineConfig:
        """The engine's part of these settings (the engine itself reads no settings)."""
        return EngineConfig(
            window=self.window,
            lookback=self.lookback_windows,
            min_history=self.min_history,
            z_threshold=self.z_threshold,
            severity_medium=self.severity_medium,
            severity_high=self.severity_high,
            allowed_lateness=self.allowed_lateness,
            detector=self.detector,
        )


def _url_password(url: str) -> str | None:
    """The password of a URL; it ends at the LAST `@`, so a raw `@` inside it is kept whole."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return password or None


_SECRET_FIELDS = {"store_url"} | {
    name for name, field in Settings.model_fields.items() if "SecretStr" in str(field.annotation)
}


def load_settings(**overrides: object) -> Settings:
    """Settings from env and `.env`, with `overrides` (CLI options) on top."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            # A model-level error's input is every setting, secrets included: never echo it.
            hidden = not error["loc"] or str(error["loc"][0]) in _SECRET_FIELDS
            got = "" if hidden else f" (got {error.get('input')!r})"
            problems.append(f"{name}: {error['msg']}{got}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
