-- tickwatch schema for PostgreSQL: what `tickwatch.store.sql` creates by itself, written out for
-- the compose deployment (mounted into /docker-entrypoint-initdb.d) and for DBAs who create the
-- tables ahead of time. tests/integration/test_postgres_store.py proves it matches the package.
-- Idempotent: safe to run again. Keys follow DESIGN.md; every write is an upsert on them.

-- one row per symbol and 5-minute window: OHLCV, the three features, baseline and z-scores
CREATE TABLE IF NOT EXISTS clean_market_data (
    symbol                 VARCHAR(64)              NOT NULL,
    window_start           TIMESTAMP WITH TIME ZONE NOT NULL,
    window_end             TIMESTAMP WITH TIME ZONE NOT NULL,
    asset_type             VARCHAR(8)               NOT NULL,
    open                   DOUBLE PRECISION         NOT NULL,
    high                   DOUBLE PRECISION         NOT NULL,
    low                    DOUBLE PRECISION         NOT NULL,
    close                  DOUBLE PRECISION         NOT NULL,
    volume                 DOUBLE PRECISION,
    tick_count             INTEGER                  NOT NULL,
    vwap                   DOUBLE PRECISION,
    price_return_pct       DOUBLE PRECISION         NOT NULL,
    volatility             DOUBLE PRECISION,
    price_return_pct_mean  DOUBLE PRECISION,
    price_return_pct_std   DOUBLE PRECISION,
    price_return_pct_z     DOUBLE PRECISION,
    volume_mean            DOUBLE PRECISION,
    volume_std             DOUBLE PRECISION,
    volume_z               DOUBLE PRECISION,
    volatility_mean        DOUBLE PRECISION,
    volatility_std         DOUBLE PRECISION,
    volatility_z           DOUBLE PRECISION,
    PRIMARY KEY (symbol, window_start)
);
CREATE INDEX IF NOT EXISTS ix_clean_window_start ON clean_market_data (window_start);
CREATE INDEX IF NOT EXISTS ix_clean_asset_type_window_start
    ON clean_market_data (asset_type, window_start);

-- one row per anomaly; detected_at keeps the time it was first detected
CREATE TABLE IF NOT EXISTS market_anomalies (
    symbol        VARCHAR(64)              NOT NULL,
    window_start  TIMESTAMP WITH TIME ZONE NOT NULL,
    anomaly_type  VARCHAR(24)              NOT NULL,
    window_end    TIMESTAMP WITH TIME ZONE NOT NULL,
    asset_type    VARCHAR(8)               NOT NULL,
    value         DOUBLE PRECISION         NOT NULL,
    mean          DOUBLE PRECISION         NOT NULL,
    std           DOUBLE PRECISION         NOT NULL,
    z_score       DOUBLE PRECISION         NOT NULL,
    severity      VARCHAR(8)               NOT NULL,
    detected_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (symbol, window_start, anomaly_type)
);
CREATE INDEX IF NOT EXISTS ix_anomalies_window_start ON market_anomalies (window_start);
CREATE INDEX IF NOT EXISTS ix_anomalies_detected_at ON market_anomalies (detected_at);
CREATE INDEX IF NOT EXISTS ix_anomalies_type_window_start
    ON market_anomalies (anomaly_type, window_start);
CREATE INDEX IF NOT EXISTS ix_anomalies_severity_window_start
    ON market_anomalies (severity, window_start);

-- input that did not become part of a window (invalid or late), once per kind, reason, payload
CREATE TABLE IF NOT EXISTS dead_letters (
    fingerprint  VARCHAR(64)              NOT NULL,
    kind         VARCHAR(16)              NOT NULL,
    reason       TEXT                     NOT NULL,
    source       VARCHAR(64),
    symbol       VARCHAR(64),
    payload      TEXT                     NOT NULL,
    received_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (fingerprint)
);
CREATE INDEX IF NOT EXISTS ix_dead_letters_received_at ON dead_letters (received_at);
