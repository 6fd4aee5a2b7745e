-- alert_deliveries, added by the second release's storage/init.sql (commit 33bae34)
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id            SERIAL                   NOT NULL,
    symbol        VARCHAR(64)              NOT NULL,
    window_start  TIMESTAMP WITH TIME ZONE NOT NULL,
    anomaly_type  VARCHAR(24)              NOT NULL,
    severity      VARCHAR(8)               NOT NULL,
    status        VARCHAR(12)              NOT NULL,
    attempts      INTEGER                  NOT NULL,
    http_status   INTEGER,
    error         TEXT,
    delivered_at  TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_alert_deliveries_delivered_at ON alert_deliveries (delivered_at);
