"""The JSON API over known rows, on SQLite and on a real PostgreSQL.

Seeded rows (2024-03-04, UTC; newest window end 12:00, so `range=1h` is [11:00, 12:00)):

    windows    AAPL    10:00 o100 c101 v1000 vol0.5 | 10:05 o101 c102 v1500 vol1.02
               AAPL    11:00 o102 c99 v800 vol2
               bitcoin 10:00 o50000 c50500 v2 vol100 | 11:55 o50500 c51000 v3 vol51
    anomalies  #1 AAPL 10:05 price_spike z+4.5 medium   #2 AAPL 11:00 volatility_burst z+6 high
               #3 AAPL 11:00 price_spike z-3.5 low      #4 bitcoin 11:55 volume_surge z+3.2 low
               #5 bitcoin 10:00 volatility_burst z+5.5 high

Every expected number below is worked out by hand from this table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from tickwatch.config import Settings
from tickwatch.model import Anomaly, AnomalyType, AssetType, Severity, Window
from tickwatch.store import SqlStore
from tickwatch.web import WebServer, create_app

DAY = datetime(2024, 3, 4, tzinfo=UTC)
DETECTED = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2024, 3, 4, 12, 5, tzinfo=UTC)  # the checks' clock: crypto fresh, NYSE closed


def at(hhmm: str) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return DAY.replace(hour=hour, minute=minute)


def window(symbol: str, start: str, o: float, c: float, volume: float, vol: float) -> Window:
    asset = AssetType.CRYPTO if symbol == "bitcoin" else AssetType.STOCK
    begin = at(start)
    return Window(
        symbol, asset, begin, begin + timedelta(minutes=5), o, max(o, c), min(o, c), c,
        volume, 10, None, (c - o) / o * 100, vol,
    )  # fmt: skip


def anomaly(symbol: str, start: str, kind: AnomalyType, z: float, sev: Severity) -> Anomaly:
    asset = AssetType.CRYPTO if symbol == "bitcoin" else AssetType.STOCK
    begin = at(start)
    end = begin + timedelta(minutes=5)
    return Anomaly(symbol, asset, begin, end, kind, 1.0 + z, 1.0, 1.0, z, sev, DETECTED)


WINDOWS = [
    window("AAPL", "10:00", 100, 101, 1000, 0.5),
    window("AAPL", "10:05", 101, 102, 1500, 1.02),
    window("AAPL", "11:00", 102, 99, 800, 2.0),
    window("bitcoin", "10:00", 50000, 50500, 2, 100),
    window("bitcoin", "11:55", 50500, 51000, 3, 51),
]
P, V, S = AnomalyType.PRICE_SPIKE, AnomalyType.VOLATILITY_BURST, AnomalyType.VOLUME_SURGE
ANOMALIES = [
    anomaly("AAPL", "10:05", P, 4.5, Severity.MEDIUM),
    anomaly("AAPL", "11:00", V, 6.0, Severity.HIGH),
    anomaly("AAPL", "11:00", P, -3.5, Severity.LOW),
    anomaly("bitcoin", "11:55", S, 3.2, Severity.LOW),
    anomaly("bitcoin", "10:00", V, 5.5, Severity.HIGH),
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_db")
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('api') / 'tickwatch.db'}"


@pytest.fixture
def settings(store_url: str, tmp_path: object) -> Settings:
    store = SqlStore(store_url)
    store.write(WINDOWS, ANOMALIES)
    store.close()
    return Settings(store_url=store_url, data_dir=tmp_path)  # type: ignore[arg-type]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, simulated=True, clock=lambda: NOW)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def get(client: TestClient, path: str, **params: object) -> object:
    response = client.get(path, params=params)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response.json()


def test_meta_names_symbols_and_newest_time(client: TestClient) -> None:
    meta = get(client, "/api/meta")
    assert meta["simulated"] is True
    assert meta["newest"] == "2024-03-04T12:00:00Z"
    assert meta["symbols"] == [
        {"symbol": "bitcoin", "asset_type": "crypto"},
        {"symbol": "AAPL", "asset_type": "stock"},
    ]
    assert meta["z_threshold"] == 3.0


def test_anomalies_newest_window_first_then_largest_z(client: TestClient) -> None:
    page = get(client, "/api/anomalies", range="all")
    keys = [(a["symbol"], a["window_start"][11:16], a["anomaly_type"]) for a in page["items"]]
    assert page["total"] == 5
    assert keys == [
        ("bitcoin", "11:55", "volume_surge"),
        ("AAPL", "11:00", "volatility_burst"),
        ("AAPL", "11:00", "price_spike"),
        ("AAPL", "10:05", "price_spike"),
        ("bitcoin", "10:00", "volatility_burst"),
    ]
    first = page["items"][1]
    assert first["z_score"] == 6.0
    assert first["severity"] == "high"
    assert first["value"] == 7.0


def test_anomalies_paged_and_filtered(client: TestClient) -> None:
    page = get(client, "/api/anomalies", range="all", limit=2, offset=1)
    assert page["total"] == 5
    assert [(a["symbol"], a["z_score"]) for a in page["items"]] == [("AAPL", 6.0), ("AAPL", -3.5)]
    high = get(client, "/api/anomalies", range="all", severity="high")
    assert {(a["symbol"], a["window_start"][11:16]) for a in high["items"]} == {
        ("AAPL", "11:00"),
        ("bitcoin", "10:00"),
    }
    spikes = get(client, "/api/anomalies", range="all", type="price_spike", symbol="AAPL")
    assert spikes["total"] == 2
    last_hour = get(client, "/api/anomalies", range="1h")
    assert last_hour["total"] == 3  # #2, #3 and #4 start at or after 11:00
    explicit = get(
        client, "/api/anomalies", start="2024-03-04T10:00:00Z", end="2024-03-04T10:05:00Z"
    )
    assert [a["symbol"] for a in explicit["items"]] == ["bitcoin"]


def test_summary_counts(client: TestClient) -> None:
    s = get(client, "/api/summary", range="all")
    assert (s["total"], s["high"], s["windows"], s["symbols"]) == (5, 2, 5, 2)
    assert s["by_type"] == {"price_spike": 2, "volume_surge": 1, "volatility_burst": 2}
    assert s["by_severity"] == {"low": 2, "medium": 1, "high": 2}
    assert s["by_symbol"] == [
        {"symbol": "AAPL", "asset_type": "stock", "total": 3, "high": 1, "medium": 1, "low": 1},
        {"symbol": "bitcoin", "asset_type": "crypto", "total": 2, "high": 1, "medium": 0, "low": 1},
    ]
    assert s["by_asset_severity"] == {
        "crypto": {"low": 1, "medium": 0, "high": 1},
        "stock": {"low": 1, "medium": 1, "high": 1},
    }
    assert [(h["hour"][11:16], h["total"]) for h in s["hourly"]] == [("10:00", 2), ("11:00", 3)]
    assert s["hourly"][1]["by_severity"] == {"low": 2, "medium": 0, "high": 1}
    z = {b["low"]: b["count"] for b in s["z_histogram"] if b["count"]}
    assert z == {-4: 1, 3: 1, 4: 1, 5: 1, 6: 1}  # floor of -3.5, 3.2, 4.5, 5.5, 6
    hour = get(client, "/api/summary", range="1h", symbol="AAPL")
    assert (hour["total"], hour["high"], hour["windows"]) == (2, 1, 1)


def test_latest_prices_and_change_over_range(client: TestClient) -> None:
    prices = get(client, "/api/prices/latest", range="all")
    assert [(p["symbol"], p["close"]) for p in prices] == [("bitcoin", 51000), ("AAPL", 99)]
    assert prices[0]["change_pct"] == pytest.approx(2.0)  # 50000 -> 51000
    assert prices[1]["change_pct"] == pytest.approx(-1.0)  # 100 -> 99
    hour = get(client, "/api/prices/latest", range="1h")
    assert hour[1]["change_pct"] == pytest.approx((99 - 102) / 102 * 100)


def test_windows_with_volume_change_and_relative_volatility(client: TestClient) -> None:
    rows = get(client, "/api/windows", range="all", symbol="AAPL")["items"]
    assert [r["window_start"][11:16] for r in rows] == ["10:00", "10:05", "11:00"]
    assert [r["volume_delta"] for r in rows] == [None, 500, -700]
    expected = [0.5 / 101 * 100, 1.02 / 102 * 100, 2 / 99 * 100]
    assert [r["volatility_pct"] for r in rows] == pytest.approx(expected)
    assert rows[2]["price_return_pct"] == pytest.approx(-3 / 102 * 100)


def test_volatility_is_a_rolling_mean(client: TestClient) -> None:
    series = get(client, "/api/volatility", range="all")
    assert [s["symbol"] for s in series] == ["bitcoin", "AAPL"]
    aapl = series[1]
    a, b, c = 0.5 / 101 * 100, 1.0, 2 / 99 * 100
    assert [p["value"] for p in aapl["points"]] == pytest.approx([a, (a + b) / 2, (a + b + c) / 3])
    assert aapl["latest"] == pytest.approx((a + b + c) / 3)


def test_bad_parameters_say_what_to_do(client: TestClient) -> None:
    bad_range = client.get("/api/anomalies", params={"range": "yesterday"})
    assert bad_range.status_code == 422
    assert "24h" in bad_range.json()["detail"]
    naive = client.get("/api/anomalies", params={"start": "2024-03-04T10:00:00"})
    assert naive.status_code == 422
    assert "UTC offset" in naive.json()["detail"]
    assert client.get("/api/anomalies", params={"severity": "extreme"}).status_code == 422


def test_health_metrics_openapi_and_pages(client: TestClient) -> None:
    health = get(client, "/health")
    assert health["status"] == "ok"
    assert health["store"]["ok"] is True
    assert health["pipeline"] is None
    metrics = client.get("/metrics")
    assert "tickwatch_stream_clients 0.0" in metrics.text
    paths = get(client, "/openapi.json")["paths"]  # type: ignore[index]
    for path in ("/api/anomalies", "/api/windows", "/api/prices/latest", "/api/summary"):
        assert path in paths
    for page in ("/", "/overview", "/alerts", "/volatility"):
        assert "echarts.min.js" in client.get(page).text
    assert client.get("/static/vendor/echarts.min.js").status_code == 200


def test_stream_delivers_an_anomaly_written_by_another_process(settings: Settings) -> None:
    """The served app polls the store: a row written after the client connects arrives."""
    server = WebServer(create_app(settings, poll_seconds=0.2), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh = Anomaly(
        "AAPL", AssetType.STOCK, at("11:55"), at("12:00"), AnomalyType.VOLUME_SURGE,
        9000.0, 1000.0, 500.0, 16.0, Severity.HIGH, DETECTED + timedelta(seconds=1),
    )  # fmt: skip
    try:
        with httpx.stream("GET", f"{server.url}/api/stream", timeout=10) as response:
            lines = response.iter_lines()
            assert next(lines) == ": connected"
            store = SqlStore(settings.database_url)
            store.write([], [fresh])
            store.close()
            data = next(line for line in lines if line.startswith("data: "))
    finally:
        server.stop()
        thread.join(10)
    event = orjson.loads(data.removeprefix("data: "))
    assert (event["symbol"], event["anomaly_type"]) == ("AAPL", "volume_surge")
    assert event["z_score"] == 16


def test_windows_are_paged_by_cursor_and_stable_while_rows_arrive(
    client: TestClient, settings: Settings
) -> None:
    first = get(client, "/api/windows", range="all", limit=2)
    keys = [(r["symbol"], r["window_start"][11:16]) for r in first["items"]]
    assert keys == [("AAPL", "10:00"), ("bitcoin", "10:00")]  # oldest first, then symbol
    # a window arrives that sorts before the cursor: an offset would now repeat bitcoin 10:00
    store = SqlStore(settings.database_url)
    store.write([window("AAPL", "09:55", 99, 100, 900, 0.4)], [])
    store.close()
    seen = list(keys)
    cursor = first["next_cursor"]
    pages = []
    while cursor is not None:
        page = get(client, "/api/windows", range="all", limit=2, cursor=cursor)
        pages.append(page["items"])
        seen += [(r["symbol"], r["window_start"][11:16]) for r in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [
        ("AAPL", "10:00"),
        ("bitcoin", "10:00"),
        ("AAPL", "10:05"),
        ("AAPL", "11:00"),
        ("bitcoin", "11:55"),
    ]
    assert len(pages) == 2
    # the volume change reaches back across the page boundary: 1500 - 1000, 800 - 1500
    assert [r["volume_delta"] for r in pages[0]] == [500, -700]


def test_windows_and_anomalies_are_bounded(client: TestClient) -> None:
    assert client.get("/api/windows", params={"limit": 10_001}).status_code == 422
    assert client.get("/api/anomalies", params={"limit": 1001}).status_code == 422
    assert get(client, "/api/windows", range="all")["limit"] == 5000  # a default, not 'all'
    for path in ("/api/windows", "/api/anomalies"):
        bad = client.get(path, params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422 and "next_cursor" in bad.text


def test_anomalies_cursor_never_repeats_a_row_while_rows_arrive(
    client: TestClient, settings: Settings
) -> None:
    first = get(client, "/api/anomalies", range="all", limit=2)
    # newer anomaly lands on top: offset=2 would repeat AAPL 11:00 volatility_burst
    late = anomaly("bitcoin", "12:00", S, 9.0, Severity.HIGH)
    store = SqlStore(settings.database_url)
    store.write([], [late])
    store.close()
    by_offset = get(client, "/api/anomalies", range="all", limit=2, offset=2)["items"]
    second = get(client, "/api/anomalies", range="all", limit=2, cursor=first["next_cursor"])
    third = get(client, "/api/anomalies", range="all", limit=2, cursor=second["next_cursor"])
    keys = [
        (a["symbol"], a["window_start"][11:16], a["anomaly_type"])
        for a in first["items"] + second["items"] + third["items"]
    ]
    assert keys == [
        ("bitcoin", "11:55", "volume_surge"),
        ("AAPL", "11:00", "volatility_burst"),
        ("AAPL", "11:00", "price_spike"),
        ("AAPL", "10:05", "price_spike"),
        ("bitcoin", "10:00", "volatility_burst"),
    ]
    assert third["next_cursor"] is None
    assert by_offset[0]["window_start"][11:16] == "11:00"  # why cursors: offsets shift


def test_volatility_series_is_thinned_not_unbounded(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tickwatch.web.queries.MAX_SERIES_POINTS", 2)
    aapl = get(client, "/api/volatility", range="all")[1]  # type: ignore[index]
    a, b, c = 0.5 / 101 * 100, 1.02 / 102 * 100, 2 / 99 * 100
    # 3 windows, at most 2 points: every 2nd point from the first, and always the latest
    assert [p["window_start"][11:16] for p in aapl["points"]] == ["10:00", "11:00"]
    assert [p["value"] for p in aapl["points"]] == pytest.approx([a, (a + b + c) / 3])
    assert aapl["latest"] == pytest.approx((a + b + c) / 3)


def test_z_histogram_end_bins_say_they_are_open(client: TestClient) -> None:
    bins = get(client, "/api/summary", range="all")["z_histogram"]  # type: ignore[index]
    assert (bins[0]["low"], bins[0]["label"]) == (-10, "< -9")
    assert (bins[-1]["low"], bins[-1]["label"]) == (9, "≥ 9")
    assert [b["label"] for b in bins[9:12]] == ["-1", "0", "1"]


def test_health_is_degraded_when_a_check_fails(settings: Settings) -> None:
    later = NOW + timedelta(hours=2)  # crypto windows stale by ~2 h: freshness fails
    app = create_app(settings, clock=lambda: later)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        checks = client.get("/health/checks")
        health = client.get("/health")
    assert checks.status_code == 503
    failing = [c["name"] for c in checks.json()["checks"] if c["verdict"] == "fail"]
    assert "freshness" in failing
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["checks"]["failing"] == failing


def alert_row(
    alert_id: str, symbol: str, kind: str, opened: str, last: str, closed: str | None, z: float
) -> dict[str, object]:
    asset = "crypto" if symbol == "bitcoin" else "stock"
    kinds = ["price_spike", "volatility_burst"] if symbol == "AAPL" else ["volume_surge"]
    return {
        "alert_id": alert_id,
        "symbol": symbol,
        "asset_type": asset,
        "kind": kind,
        "opened_at": at(opened),
        "last_window_start": at(last),
        "closed_at": None if closed is None else at(closed),
        "peak_severity": None if kind == "data_fault" else "high" if z > 5 else "low",
        "peak_abs_z": z,
        "features": ",".join(kinds),
        "direction": ",".join(f"{k}:up" for k in kinds),
        "window_count": 3 if symbol == "AAPL" else 1,
        "market_event_id": None,
        "summary": f"{symbol} {kind} from {opened}",
    }


ALERTS = [
    alert_row("a1", "AAPL", "market", "10:05", "11:00", "11:35", 6.0),
    alert_row("a2", "bitcoin", "market", "11:55", "11:55", None, 3.2),
    alert_row("a3", "bitcoin", "data_fault", "10:00", "10:00", "10:35", 5.5),
]


@pytest.fixture
def alerts_client(client: TestClient, settings: Settings) -> TestClient:
    from tickwatch.store.alert_rows import alerts

    store = SqlStore(settings.database_url)
    store.upsert(alerts, ALERTS)
    store.close()
    return client


def ids(page: object) -> list[str]:
    return [a["alert_id"] for a in page["items"]]  # type: ignore[index]


def test_alerts_are_episodes_newest_first_and_filtered(alerts_client: TestClient) -> None:
    every = get(alerts_client, "/api/alerts", range="all")
    assert (ids(every), every["total"]) == (["a2", "a1", "a3"], 3)  # type: ignore[index]
    a1 = every["items"][1]  # type: ignore[index]
    assert a1["features"] == ["price_spike", "volatility_burst"]
    assert a1["direction"] == {"price_spike": "up", "volatility_burst": "up"}
    assert a1["closed_at"] == "2024-03-04T11:35:00Z" and a1["summary"] == "AAPL market from 10:05"
    assert ids(get(alerts_client, "/api/alerts", range="all", kind="market")) == ["a2", "a1"]
    assert ids(get(alerts_client, "/api/alerts", range="all", open="true")) == ["a2"]
    # [11:00, 12:00): a1's last window is 11:00; a3 closed after its 10:00 window
    assert ids(get(alerts_client, "/api/alerts", range="1h")) == ["a2", "a1"]
    assert ids(get(alerts_client, "/api/alerts", range="all", symbol="AAPL")) == ["a1"]


def test_alerts_page_by_cursor(alerts_client: TestClient) -> None:
    seen, cursor = [], None
    while True:
        params: dict[str, object] = {"range": "all", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = get(alerts_client, "/api/alerts", **params)
        seen += ids(page)
        if not (cursor := page["next_cursor"]):  # type: ignore[index]
            break
    assert seen == ["a2", "a1", "a3"]
    assert alerts_client.get("/api/alerts", params={"limit": 501}).status_code == 422


def test_alert_windows_are_the_episode_windows_with_their_anomalies(
    alerts_client: TestClient,
) -> None:
    rows = get(alerts_client, "/api/alerts/a1/windows")
    assert [(w["window_start"][11:16], w["anomalies"]) for w in rows] == [  # type: ignore[union-attr]
        ("10:05", ["price_spike"]),
        ("11:00", ["price_spike", "volatility_burst"]),
    ]
    assert rows[1]["price_return_pct"] == pytest.approx(-3 / 102 * 100)  # type: ignore[index]
    missing = alerts_client.get("/api/alerts/nope/windows")
    assert missing.status_code == 404 and "/api/alerts" in missing.text


def test_stream_reconnect_with_last_event_id_misses_nothing(settings: Settings) -> None:
    """Events carry ids; anomalies detected while a client was away are replayed first."""
    server = WebServer(create_app(settings, poll_seconds=0.2), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.wait_started(10.0)

    def spike(start: str, z: float, second: int) -> Anomaly:
        begin = at(start)
        return Anomaly(
            "AAPL", AssetType.STOCK, begin, begin + timedelta(minutes=5), AnomalyType.PRICE_SPIKE,
            z, 0.0, 1.0, z, Severity.HIGH, DETECTED + timedelta(seconds=second),
        )  # fmt: skip

    def write(*rows: Anomaly) -> None:
        store = SqlStore(settings.database_url)
        store.write([], list(rows))
        store.close()

    def events(headers: dict[str, str], wanted: int) -> list[tuple[str, dict[str, object]]]:
        found: list[tuple[str, dict[str, object]]] = []
        with httpx.stream("GET", f"{server.url}/api/stream", headers=headers, timeout=10) as r:
            fields: dict[str, str] = {}
            for line in r.iter_lines():
                if line == ": connected" and not headers:
                    write(spike("11:10", 7.0, 10))
                elif line and not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
                elif not line and "data" in fields:  # a blank line ends an event
                    found.append((fields.get("id", ""), orjson.loads(fields["data"])))
                    fields = {}
                    if len(found) == wanted:
                        return found
        return found

    try:
        [(first_id, first)] = events({}, 1)
        write(spike("11:15", 8.0, 20), spike("11:20", 9.0, 30))  # while nobody listens
        time.sleep(1.0)  # the live feed (polling every 0.2 s) moves past them meanwhile
        replay = events({"Last-Event-ID": first_id}, 2)
    finally:
        server.stop()
        thread.join(10)
    assert first["z_score"] == 7.0 and first_id
    assert [e["z_score"] for _, e in replay] == [8.0, 9.0]
    assert all(ident and ident != first_id for ident, _ in replay)
