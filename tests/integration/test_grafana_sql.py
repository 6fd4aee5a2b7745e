"""The committed Grafana files are fresh, and every panel's SQL runs on a real PostgreSQL.

Each panel's `rawSql` is read from the committed dashboard JSON, Grafana's macros are expanded
the way Grafana's PostgreSQL datasource expands them, and the result is compared with rows
worked out by hand from the seed below (range 2024-03-04 00:00 to 23:59:59 UTC, $symbol = AAPL
and bitcoin; MSFT and the 2024-03-05 rows must be filtered out). The anomaly counts the web API
shows too are compiled from its own selects (`tickwatch.web.aggregates`): on these rows they must
give the numbers of the web summary.

    windows    AAPL    10:00 o100 c101 v1000 vol0.5 (return mean 0.1, std 0.2)
               AAPL    10:05 o101 c102 v1500 vol1.02
               bitcoin 10:00 o50000 c50500 v2 vol100 | 11:55 o50500 c51000 v3 vol null
               MSFT    10:00 (other symbol)          | AAPL 2024-03-05 01:00 (out of range)
    anomalies  AAPL 10:05 price_spike z+4.5 medium | AAPL 10:00 volatility_burst z+6 high
               bitcoin 11:55 volume_surge z-3.2 low | MSFT 10:00 and AAPL 03-05 01:00 (out)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.services import drop_database, fresh_database
from tickwatch import grafana
from tickwatch.model import Anomaly, AnomalyType, AssetType, Feature, Score, Severity, Window
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts
from tickwatch.web.queries import Reader, Span

ROOT = Path(__file__).resolve().parents[2] / "grafana"
FROM = datetime(2024, 3, 4, tzinfo=UTC)
TO = datetime(2024, 3, 4, 23, 59, 59, tzinfo=UTC)
SYMBOLS = ("AAPL", "bitcoin")
UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def at(hhmm: str, day: int = 4) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


def epoch(hhmm: str) -> float:
    return at(hhmm).timestamp()


def window(
    symbol: str, start: datetime, o: float, c: float, volume: float, vol: float | None,
    scores: dict[Feature, Score] | None = None,
) -> Window:  # fmt: skip
    asset = AssetType.CRYPTO if symbol == "bitcoin" else AssetType.STOCK
    end = start + timedelta(minutes=5)
    ret = (c - o) / o * 100
    return Window(
        symbol, asset, start, end, o, max(o, c), min(o, c), c, volume, 4, None, ret, vol,
        scores or {},
    )  # fmt: skip


def anomaly(symbol: str, start: datetime, kind: AnomalyType, z: float, sev: Severity) -> Anomaly:
    asset = AssetType.CRYPTO if symbol == "bitcoin" else AssetType.STOCK
    end = start + timedelta(minutes=5)
    return Anomaly(symbol, asset, start, end, kind, 2.0, 1.0, 0.5, z, sev, datetime.now(UTC))


WINDOWS = [
    window("AAPL", at("10:00"), 100, 101, 1000, 0.5, {Feature.PRICE_RETURN: Score(0.1, 0.2, 4.5)}),
    window("AAPL", at("10:05"), 101, 102, 1500, 1.02),
    window("bitcoin", at("10:00"), 50000, 50500, 2, 100),
    window("bitcoin", at("11:55"), 50500, 51000, 3, None),
    window("MSFT", at("10:00"), 400, 404, 10, 1.0),
    window("AAPL", at("01:00", day=5), 102, 103, 10, 1.0),
]
ANOMALIES = [
    anomaly("AAPL", at("10:05"), AnomalyType.PRICE_SPIKE, 4.5, Severity.MEDIUM),
    anomaly("AAPL", at("10:00"), AnomalyType.VOLATILITY_BURST, 6.0, Severity.HIGH),
    anomaly("bitcoin", at("11:55"), AnomalyType.VOLUME_SURGE, -3.2, Severity.LOW),
    anomaly("MSFT", at("10:00"), AnomalyType.PRICE_SPIKE, 7.0, Severity.HIGH),
    anomaly("AAPL", at("01:00", day=5), AnomalyType.VOLUME_SURGE, 8.0, Severity.HIGH),
]

AAPL_V1, AAPL_V2, BTC_V1 = 0.5 / 101 * 100, 1.02 / 102 * 100, 100 / 50500 * 100
RET_1, RET_2 = 1.0, 1 / 101 * 100  # (101-100)/100, (102-101)/101 = (51000-50500)/50500
H10, H11 = epoch("10:00"), epoch("11:00")


# panel title -> (columns, rows); a row of "*" accepts any value in that column.
def episode(symbol: str, start: datetime, kind: str, severity: str, z: float) -> dict[str, Any]:
    return {
        "alert_id": f"{symbol}-{start:%d%H%M}", "symbol": symbol,
        "asset_type": "crypto" if symbol == "bitcoin" else "stock", "kind": kind,
        "opened_at": start, "last_window_start": start, "closed_at": None,
        "peak_severity": severity, "peak_abs_z": z, "features": "volume_surge",
        "direction": "volume_surge:up", "window_count": 1, "market_event_id": None,
        "summary": f"{symbol} summary",
    }  # fmt: skip


EPISODES = [
    episode("AAPL", at("10:00"), "market", "high", 7.2),
    episode("bitcoin", at("11:55"), "data_fault", "high", 50.0),
    episode("MSFT", at("10:00"), "market", "high", 9.0),  # not in the symbol variable
    episode("AAPL", at("01:00", day=5), "market", "low", 3.5),  # after the range
]

EXPECTED: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {
    "Alert episodes": (
        [
            "time",
            "symbol",
            "asset_type",
            "kind",
            "severity",
            "peak |z|",
            "windows",
            "summary",
            "closed_at",
            "market_event_id",
        ],
        [
            (
                at("11:55"),
                "bitcoin",
                "crypto",
                "data_fault",
                "high",
                50.0,
                1,
                "bitcoin summary",
                None,
                None,
            ),
            (at("10:00"), "AAPL", "stock", "market", "high", 7.2, 1, "AAPL summary", None, None),
        ],
    ),
    "Total anomalies": (["anomalies"], [(3,)]),
    "High-severity anomalies": (["high"], [(1,)]),
    "Anomalies by type": (
        ["type", "anomalies"],
        [("price_spike", 1), ("volatility_burst", 1), ("volume_surge", 1)],
    ),
    "Anomalies by symbol": (
        ["symbol", "asset_type", "anomalies", "high", "medium", "low"],
        [("AAPL", "stock", 2, 1, 1, 0), ("bitcoin", "crypto", 1, 0, 0, 1)],
    ),
    "Anomaly timeline (per hour, by type)": (
        ["time", "metric", "anomalies"],
        [(H10, "price_spike", 1), (H10, "volatility_burst", 1), (H11, "volume_surge", 1)],
    ),
    "Latest prices": (
        ["symbol", "asset_type", "price", "last return %", "as of"],
        [
            ("AAPL", "stock", 102, RET_2, at("10:10")),
            ("bitcoin", "crypto", 51000, RET_2, at("12:00")),
        ],
    ),
    "Price per symbol": (
        ["time", "metric", "close"],
        [
            (at("10:00"), "AAPL", 101),
            (at("10:00"), "bitcoin", 50500),
            (at("10:05"), "AAPL", 102),
            (at("11:55"), "bitcoin", 51000),
        ],
    ),
    "Live alerts": (
        [
            "time",
            "symbol",
            "asset_type",
            "anomaly_type",
            "severity",
            "value",
            "mean",
            "std",
            "z_score",
            "detected_at",
        ],
        [
            (at("11:55"), "bitcoin", "crypto", "volume_surge", "low", 2.0, 1.0, 0.5, -3.2, "*"),
            (at("10:05"), "AAPL", "stock", "price_spike", "medium", 2.0, 1.0, 0.5, 4.5, "*"),
            (at("10:00"), "AAPL", "stock", "volatility_burst", "high", 2.0, 1.0, 0.5, 6.0, "*"),
        ],
    ),
    "Anomalies per hour by severity": (
        ["time", "metric", "anomalies"],
        [(H10, "high", 1), (H10, "medium", 1), (H11, "low", 1)],
    ),
    "z-score distribution": (["z_score"], [(-3.2,), (4.5,), (6.0,)]),  # compared sorted
    "Top anomalous symbols": (
        ["symbol", "asset_type", "anomalies", "high", "medium", "low"],
        [("AAPL", "stock", 2, 1, 1, 0), ("bitcoin", "crypto", 1, 0, 0, 1)],
    ),
    "Severity by asset type": (
        ["asset_type", "high", "medium", "low"],
        [("crypto", 0, 0, 1), ("stock", 1, 1, 0)],
    ),
    "Rolling volatility per symbol (% of price, 1-hour mean)": (
        ["time", "metric", "volatility %"],
        [
            (at("10:00"), "AAPL", AAPL_V1),
            (at("10:00"), "bitcoin", BTC_V1),
            (at("10:05"), "AAPL", (AAPL_V1 + AAPL_V2) / 2),
            (at("11:55"), "bitcoin", BTC_V1),  # the null volatility is left out of the mean
        ],
    ),
    "Price return % with ±3 std bands": (
        ["time", "symbol", "return %", "upper band", "lower band"],
        [
            (at("10:00"), "AAPL", RET_1, 0.1 + 3 * 0.2, 0.1 - 3 * 0.2),
            (at("10:00"), "bitcoin", RET_1, None, None),
            (at("10:05"), "AAPL", RET_2, None, None),
            (at("11:55"), "bitcoin", RET_2, None, None),
        ],
    ),
    "Volume change per window": (
        ["time", "metric", "volume change"],
        [
            (at("10:00"), "AAPL", None),
            (at("10:00"), "bitcoin", None),
            (at("10:05"), "AAPL", 500),
            (at("11:55"), "bitcoin", 1),
        ],
    ),
    "Asset volatility comparison (latest)": (
        ["symbol", "volatility %"],
        [("AAPL", (AAPL_V1 + AAPL_V2) / 2), ("bitcoin", BTC_V1)],
    ),
    "Volatility vs price return": (
        ["volatility %", "return %", "symbol"],
        [(AAPL_V1, RET_1, "AAPL"), (BTC_V1, RET_1, "bitcoin"), (AAPL_V2, RET_2, "AAPL")],
    ),
}


def expand(sql: str) -> str:
    """Grafana's PostgreSQL macros for the range FROM..TO and $symbol = SYMBOLS."""
    iso_from, iso_to = (t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (FROM, TO))

    def group(m: re.Match[str]) -> str:
        seconds = int(m[3]) * UNIT[m[4]]
        alias = ' AS "time"' if m[1] else ""
        return f"floor(extract(epoch from {m[2]})/{seconds})*{seconds}{alias}"

    sql = re.sub(r"\$__timeFilter\((\w+)\)", rf"\1 BETWEEN '{iso_from}' AND '{iso_to}'", sql)
    sql = re.sub(r"\$__timeGroup(Alias)?\((\w+),\s*'?(\d+)([smhd])'?\)", group, sql)
    sql = re.sub(r"\$__time\((\w+)\)", r'\1 AS "time"', sql)
    sql = sql.replace("$symbol", ", ".join(f"'{s}'" for s in SYMBOLS))
    assert "$" not in sql, sql
    return sql


def panels() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name in grafana.DASHBOARDS:
        board = json.loads((ROOT / "dashboards" / name).read_text())
        found += [(name, panel) for panel in board["panels"]]
    return found


def same(actual: Any, expected: Any) -> bool:
    if expected == "*":
        return True
    if isinstance(actual, Decimal):
        actual = float(actual)
    if isinstance(expected, float) and actual is not None:
        return bool(actual == pytest.approx(expected, rel=1e-9))
    return bool(actual == expected)


def test_committed_files_are_fresh() -> None:
    assert grafana.stale(ROOT) == [], f"run `{grafana.COMMAND}` and commit grafana/"


def test_generated_files_name_their_command_and_the_datasource() -> None:
    datasource = (ROOT / "provisioning/datasources/datasource.yml").read_text()
    assert datasource.startswith(f"# Generated by `{grafana.COMMAND}`")
    assert "name: MarketDB" in datasource
    assert "password: ${POSTGRES_PASSWORD}" in datasource
    assert "database: ${POSTGRES_DB}" in datasource
    refresh = {}
    for name in grafana.DASHBOARDS:
        board = json.loads((ROOT / "dashboards" / name).read_text())
        assert grafana.COMMAND in board["description"]
        refresh[board["title"]] = board["refresh"]
    assert refresh == {
        "Market Overview": "30s",
        "Anomaly Alerts": "10s",
        "Volatility Trends": "30s",
    }


def test_alert_table_colours_severity() -> None:
    table = next(p for _, p in panels() if p["title"] == "Live alerts")
    override = next(
        o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "severity"
    )
    mapping = next(p["value"] for p in override["properties"] if p["id"] == "mappings")[0]
    colours = {k: v["color"] for k, v in mapping["options"].items()}
    assert colours == {"high": "red", "medium": "yellow", "low": "green"}


def test_every_panel_has_an_expectation() -> None:
    assert sorted(p["title"] for _, p in panels()) == sorted(EXPECTED)


def run_panel(title: str, url: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns and rows of the panel's SQL, macros expanded, on the database at `url`."""
    panel = next(p for _, p in panels() if p["title"] == title)
    [target] = panel["targets"]
    assert target["datasource"]["uid"] == "marketdb"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(text(expand(target["rawSql"])))
            return list(result.keys()), [tuple(r) for r in result]
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("title", sorted(EXPECTED))
def test_panel_sql_on_postgres(title: str, seeded_postgres: str) -> None:
    columns, rows = EXPECTED[title]
    got_columns, got = run_panel(title, seeded_postgres)
    assert got_columns == columns
    if title == "z-score distribution":
        got = sorted(got)
    assert len(got) == len(rows), got
    for actual, expected in zip(got, rows, strict=True):
        assert all(same(a, e) for a, e in zip(actual, expected, strict=True)), (actual, expected)


@pytest.mark.postgres
def test_grafana_counts_what_the_web_api_counts(seeded_postgres: str) -> None:
    """Same rows, same numbers: the web summary against the panels compiled from its selects.

    The web reads in a session whose time zone is half an hour off UTC (India), where an hour
    truncated in local time would start at :30 and split the 10:00 bucket differently."""
    india = {"options": "-c timezone=Asia/Kolkata"}
    engine = create_engine(seeded_postgres, connect_args=india)
    try:
        web = Reader(engine).summary(Span(FROM, TO), SYMBOLS)
    finally:
        engine.dispose()

    def rows(title: str) -> list[tuple[Any, ...]]:
        return run_panel(title, seeded_postgres)[1]

    assert rows("Total anomalies") == [(web.total,)] == [(3,)]
    assert rows("High-severity anomalies") == [(web.high,)]
    assert dict(rows("Anomalies by type")) == {k: n for k, n in web.by_type.items() if n}
    ranking = [(r.symbol, r.asset_type, r.total, r.high, r.medium, r.low) for r in web.by_symbol]
    assert rows("Anomalies by symbol") == ranking == rows("Top anomalous symbols")
    by_asset = {a: (n["high"], n["medium"], n["low"]) for a, n in web.by_asset_severity.items()}
    assert {a: tuple(n) for a, *n in rows("Severity by asset type")} == by_asset
    for title, key in (
        ("Anomaly timeline (per hour, by type)", "by_type"),
        ("Anomalies per hour by severity", "by_severity"),
    ):
        panel = {(float(t), metric): n for t, metric, n in rows(title)}
        hourly = {
            (h.hour.timestamp(), metric): n
            for h in web.hourly
            for metric, n in getattr(h, key).items()
            if n
        }
        assert panel == hourly
        assert {t for t, _ in hourly} == {H10, H11}  # UTC hours, whatever the session's zone


@pytest.mark.postgres
def test_grafana_volatility_is_the_web_api_volatility(seeded_postgres: str) -> None:
    """The rolling relative volatility: the web's series and latest values against the panels
    compiled from the same SQL expression, on the same rows."""
    engine = create_engine(seeded_postgres)
    try:
        web = Reader(engine).volatility(Span(FROM, TO), SYMBOLS)
    finally:
        engine.dispose()
    points = {(p.window_start, s.symbol): p.value for s in web for p in s.points}
    _, rows = run_panel("Rolling volatility per symbol (% of price, 1-hour mean)", seeded_postgres)
    panel = {(time, symbol): value for time, symbol, value in rows if value is not None}
    assert panel.keys() == points.keys()
    assert all(panel[k] == pytest.approx(points[k], rel=1e-12) for k in points)
    _, latest = run_panel("Asset volatility comparison (latest)", seeded_postgres)
    assert [s for s, _ in latest] == ["AAPL", "bitcoin"]  # highest first: 0.75 % before 0.2 %
    assert dict(latest) == pytest.approx({s.symbol: s.latest for s in web}, rel=1e-12)


@pytest.fixture(scope="module")
def seeded_postgres(postgres_url: str) -> Iterator[str]:
    """One database with the seed for all panels (they only read)."""
    url = fresh_database(postgres_url)
    store = SqlStore(url)
    store.write(WINDOWS, ANOMALIES)
    store.upsert(alerts, EPISODES)
    store.close()
    try:
        yield url
    finally:
        drop_database(postgres_url, url)
