"""The three dashboards in headless Chromium (Debian's package) driven by Playwright.

A simulated day goes through the real pipeline into SQLite; `tickwatch serve`'s app serves it on
loopback. Each dashboard must load without console errors and show the stored numbers (read
back here with plain sqlite3, not through the app); an anomaly written while the alert page is
open must appear in its table within 5 seconds. Screenshots go to test-artifacts/ and
docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route

from tests.e2e.chromium import (
    axis_labels,
    drawn_line,
    open_dashboard,
    option,
    serve,
    time_axis_labels,
)
from tickwatch.config import Settings
from tickwatch.model import Anomaly, AnomalyType, AssetType, Severity
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts
from tickwatch.web import create_app

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = REPO / "docs" / "screenshots"
START = datetime(2024, 3, 4, tzinfo=UTC)
PIPELINE_CLOCK = START + timedelta(days=1)  # detection time of the seeded anomalies
DETECTED_LIVE = PIPELINE_CLOCK + timedelta(minutes=1)  # fixed, so screenshots are reproducible


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One simulated day (fixed seed) through the real engine into a fresh SQLite store."""
    data = tmp_path_factory.mktemp("e2e") / "simulated"
    settings = Settings(data_dir=data, store_url=None)
    store = SqlStore(settings.database_url)
    processor = Processor(settings, store, None, clock=lambda: PIPELINE_CLOCK)
    simulator = MarketSimulator(settings.stock_symbols, settings.crypto_ids, 7)
    for ticks in simulator.windows(START, START + timedelta(days=1)):
        processor.handle([tick_to_record(t) for t in ticks])
    processor.finish()
    store.close()
    return settings


@pytest.fixture(scope="module")
def base_url(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings, simulated=True, poll_seconds=0.5)) as url:
        yield url


def db(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))


def newest(settings: Settings) -> str:
    """The newest window end of windows and anomalies: where the API's ranges end."""
    with db(settings) as conn:
        value: str = conn.execute(
            "SELECT max(e) FROM (SELECT max(window_end) AS e FROM clean_market_data "
            "UNION ALL SELECT max(window_end) FROM market_anomalies)"
        ).fetchone()[0]
    return value


def last_day_counts(settings: Settings) -> tuple[int, int, int]:
    """(anomalies, high, symbols) with window_start in the 24 hours before the newest end."""
    end = datetime.fromisoformat(newest(settings))
    start = (end - timedelta(hours=24)).isoformat(timespec="milliseconds")
    with db(settings) as conn:
        total, high = conn.execute(
            "SELECT count(*), sum(severity = 'high') FROM market_anomalies WHERE window_start >= ?",
            (start,),
        ).fetchone()
        (symbols,) = conn.execute("SELECT count(DISTINCT symbol) FROM clean_market_data").fetchone()
    return total, high, symbols


def chart_ready(page: Page, chart_id: str) -> None:
    assert page.get_attribute(f"#{chart_id}", "data-state") == "ready", chart_id


def series_count(page: Page, chart_id: str) -> int:
    count: int = page.evaluate(f"window.tickwatch.charts['{chart_id}'].getOption().series.length")
    return count


def screenshot(page: Page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let the last chart paint
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    shutil.copyfile(path, SCREENSHOTS / f"{name}.png")


def test_market_overview(page: Page, base_url: str, settings: Settings) -> None:
    total, high, symbols = last_day_counts(settings)
    assert total > 0 and high > 0
    open_dashboard(page, f"{base_url}/overview")
    assert page.is_visible("#sim-banner")
    assert page.inner_text("#stat-total") == f"{total:,}"
    assert page.inner_text("#stat-high") == f"{high:,}"
    assert page.inner_text("#stat-symbols") == str(symbols)
    assert page.locator("#prices .price").count() == symbols
    assert page.locator("#multiples .mini").count() == symbols
    for chart in ("chart-by-type", "chart-by-symbol", "chart-timeline"):
        chart_ready(page, chart)
    assert series_count(page, "chart-timeline") == len(AnomalyType)
    screenshot(page, "market-overview")


def alert_ids_in_range(settings: Settings) -> set[str]:
    """Episodes overlapping the 24 h before the newest window end (the API's rule)."""
    end = datetime.fromisoformat(newest(settings))
    start = (end - timedelta(hours=24)).isoformat(timespec="milliseconds")
    with db(settings) as conn:
        rows = conn.execute(
            "SELECT alert_id FROM alerts WHERE opened_at < ? "
            "AND (closed_at IS NULL OR last_window_start >= ?)",
            (end.isoformat(timespec="milliseconds"), start),
        ).fetchall()
    return {r[0] for r in rows}


def test_anomaly_alerts_live_row(page: Page, base_url: str, settings: Settings) -> None:
    episodes = alert_ids_in_range(settings)
    assert episodes, "the simulated day opens alert episodes"
    open_dashboard(page, f"{base_url}/alerts")
    assert page.locator("#alert-table tbody tr[data-key]").count() == min(50, len(episodes))
    for chart in ("chart-per-hour", "chart-z-hist", "chart-top-symbols", "chart-by-asset"):
        chart_ready(page, chart)
    page.wait_for_selector("#live.on", timeout=5_000)

    start = datetime.fromisoformat(newest(settings))
    fresh = Anomaly(
        "bitcoin", AssetType.CRYPTO, start, start + timedelta(minutes=5),
        AnomalyType.VOLUME_SURGE, 99.0, 3.0, 2.0, 48.0, Severity.HIGH, DETECTED_LIVE,
    )  # fmt: skip
    episode = {
        "alert_id": "e2e-live", "symbol": "bitcoin", "asset_type": "crypto", "kind": "market",
        "opened_at": start, "last_window_start": start, "closed_at": None,
        "peak_severity": "high", "peak_abs_z": 48.0, "features": "volume_surge",
        "direction": "volume_surge:up", "window_count": 1, "market_event_id": "ev-e2e",
        "summary": "bitcoin volume 33x its usual level",
    }  # fmt: skip
    store = SqlStore(settings.database_url)
    store.upsert(alerts, [episode])
    store.write([], [fresh])  # the live stream announces the anomaly; the table reloads
    store.close()
    row = page.wait_for_selector('#alert-table tr[data-key="e2e-live"]', timeout=5_000)
    assert row is not None
    assert "48.00" in row.inner_text() and "33x its usual level" in row.inner_text()
    assert "market-wide" in row.inner_text().lower()  # it belongs to a market event
    assert "sev-high" in (row.get_attribute("class") or "")
    page.wait_for_timeout(2_500)  # the panels refresh after a live alert
    screenshot(page, "anomaly-alerts")


def test_an_episode_expands_into_its_windows(page: Page, base_url: str, settings: Settings):
    with db(settings) as conn:
        alert_id, symbol, opened, last = conn.execute(
            "SELECT alert_id, symbol, opened_at, last_window_start FROM alerts "
            "WHERE kind = 'market' AND window_count > 1 ORDER BY opened_at DESC LIMIT 1"
        ).fetchone()
        expected = [
            f"{datetime.fromisoformat(r[0]):%Y-%m-%dT%H:%M:%SZ}"
            for r in conn.execute(
                "SELECT window_start FROM clean_market_data WHERE symbol = ? "
                "AND window_start >= ? AND window_start <= ? ORDER BY window_start",
                (symbol, opened, last),
            )
        ]
    open_dashboard(page, f"{base_url}/alerts?range=all&symbol={symbol}")
    page.click(f'#alert-table tr[data-key="{alert_id}"]')
    windows = page.wait_for_selector(f'#alert-table tr.windows[data-alert="{alert_id}"]')
    assert windows is not None
    shown = page.eval_on_selector_all(
        f'tr.windows[data-alert="{alert_id}"] tr[data-window]',
        "(rows) => rows.map((r) => r.dataset.window)",
    )
    assert shown == expected and len(shown) >= 2
    # drill-down: the symbol an hour either side of the episode, its windows among the candles
    page.click(f'tr.windows[data-alert="{alert_id}"] .drill a[data-dash="overview"]')
    open_dashboard(page, page.url)
    assert f"symbol={symbol}" in page.url and "start=" in page.url
    assert page.inner_text("#stat-total-sub") == "in the span shown"
    candles = option(page, f"mini-{symbol}")["series"][0]["data"]
    times = [five_min(c[0]) for c in candles]
    begin = datetime.fromisoformat(opened) - timedelta(hours=1)
    end = datetime.fromisoformat(last) + timedelta(minutes=65)
    assert times and begin <= min(times) and max(times) < end
    assert {datetime.fromisoformat(w) for w in shown} <= set(times)


UNITS = {"price_spike": "%", "volume_surge": " shares", "volatility_burst": " USD"}


def test_drill_down_draws_the_episode_its_band_and_why_it_fired(
    page: Page, base_url: str, settings: Settings
):
    with db(settings) as conn:
        alert_id, symbol, opened, last = conn.execute(
            "SELECT alert_id, symbol, opened_at, last_window_start FROM alerts a "
            "WHERE kind = 'market' AND asset_type = 'stock' AND window_count > 1 AND EXISTS "
            "(SELECT 1 FROM market_anomalies m WHERE m.symbol = a.symbol "
            "AND m.window_start >= a.opened_at AND m.window_start <= a.last_window_start) "
            "ORDER BY opened_at DESC LIMIT 1"
        ).fetchone()
        episode = {
            datetime.fromisoformat(r[0])
            for r in conn.execute(
                "SELECT window_start FROM clean_market_data WHERE symbol = ? "
                "AND window_start >= ? AND window_start <= ?",
                (symbol, opened, last),
            )
        }
        fired = {
            (datetime.fromisoformat(r[0]), r[1]): (r[2], r[3])
            for r in conn.execute(
                "SELECT window_start, anomaly_type, value, z_score FROM market_anomalies "
                "WHERE symbol = ? AND window_start >= ? AND window_start <= ?",
                (symbol, opened, last),
            )
        }
        begin = datetime.fromisoformat(opened) - timedelta(hours=1)
        end = datetime.fromisoformat(last) + timedelta(hours=1)
        around = conn.execute(
            "SELECT window_start, open, low, high, price_return_pct_mean, price_return_pct_std "
            "FROM clean_market_data WHERE symbol = ? AND window_start >= ? AND window_start <= ?",
            (symbol, *(t.isoformat(timespec="milliseconds") for t in (begin, end))),
        ).fetchall()
    open_dashboard(page, f"{base_url}/alerts?range=all&symbol={symbol}")
    page.click(f'#alert-table tr[data-key="{alert_id}"]')
    chart_id = f"drill-{alert_id}"
    page.wait_for_selector(f'[id="{chart_id}"][data-state="ready"]')
    # the episode's windows are shaded, each from its start to its end
    areas = option(page, chart_id)["series"][0]["markArea"]["data"]
    five = timedelta(minutes=5)
    shaded = {(five_min(a[0]["xAxis"]), five_min(a[1]["xAxis"])) for a in areas}
    assert shaded == {(w, w + five) for w in episode} and len(episode) >= 2
    candles = option(page, chart_id)["series"][0]["data"]
    assert {five_min(c[0]) for c in candles} == {datetime.fromisoformat(r[0]) for r in around}
    # the band: open x (1 + (mean -/+ 3 sigma) / 100), read back from the drawn lines
    expected = {
        datetime.fromisoformat(r[0]): tuple(
            r[1] * (1 + (r[4] + k * 3 * r[5]) / 100) for k in (-1, 1)
        )
        for r in around
        if r[5] is not None
    }
    lows = {five_min(t): v for t, v in drawn_line(page, chart_id, "band low")}
    highs = {five_min(t): v for t, v in drawn_line(page, chart_id, "band high")}
    assert set(lows) == set(highs) == set(expected)
    values = [v for pair in expected.values() for v in pair] + [x for r in around for x in r[2:4]]
    pixel = (max(values) - min(values)) / 100  # well above one pixel of a ~190 px axis
    for start, (low, high) in expected.items():
        assert lows[start] == pytest.approx(low, abs=pixel), start
        assert highs[start] == pytest.approx(high, abs=pixel), start
    # why it fired: one line per anomaly, its value with its unit and its z
    reasons = page.eval_on_selector_all(
        f'[id="{chart_id}"] ~ ul.reasons li[data-reason]',
        "(items) => items.map((li) => [li.dataset.reason, li.querySelector('.value').textContent,"
        " li.querySelector('.z').textContent, li.textContent])",
    )
    assert len(reasons) == len(fired)
    for key, value_text, z_text, text in reasons:
        moment, kind = key.split("|")
        value, z = fired[(datetime.fromisoformat(moment), kind)]
        assert value_text.endswith(UNITS[kind]), value_text
        if kind == "price_spike":
            assert value_text == f"return {value:+.3f}%"
        assert z_text == f"z {z:+.2f}"
        assert "scored" in text and "baseline" in text
    screenshot(page, "alert-drill-down")


def test_volatility_trends(page: Page, base_url: str, settings: Settings) -> None:
    _, _, symbols = last_day_counts(settings)
    open_dashboard(page, f"{base_url}/volatility")
    for chart in (
        "chart-rolling-vol",
        "chart-returns",
        "chart-volume-delta",
        "chart-vol-compare",
        "chart-scatter",
    ):
        chart_ready(page, chart)
    assert series_count(page, "chart-rolling-vol") == symbols
    assert series_count(page, "chart-scatter") == symbols
    screenshot(page, "volatility-trends")


def test_symbol_filter_and_range_picker(page: Page, base_url: str) -> None:
    open_dashboard(page, f"{base_url}/overview")
    page.select_option("#symbol", "bitcoin")
    page.wait_for_selector("#multiples.single #mini-bitcoin")
    assert "symbol=bitcoin" in page.url
    assert page.locator("#prices .price").count() == 1
    page.click('#ranges button[data-range="6h"]')
    page.wait_for_url("**range=6h**")
    open_dashboard(page, page.url)
    assert page.get_attribute('#ranges button[data-range="6h"]', "class") == "active"
    screenshot(page, "price-chart-bitcoin")


def rows_24h(settings: Settings, sql: str, *params: object) -> list[tuple[object, ...]]:
    end = datetime.fromisoformat(newest(settings))
    start = (end - timedelta(hours=24)).isoformat(timespec="milliseconds")
    with db(settings) as conn:
        return list(conn.execute(sql, (start, *params)).fetchall())


def five_min(ms_value: float) -> datetime:
    """A time read back from pixels, snapped to its 5-minute window start."""
    return datetime.fromtimestamp(round(ms_value / 300_000) * 300, UTC)


def test_return_band_is_drawn_around_the_mean(page: Page, base_url: str, settings: Settings):
    baseline = {
        datetime.fromisoformat(str(start)): (float(str(mean)), float(str(std)))
        for start, mean, std in rows_24h(
            settings,
            "SELECT window_start, price_return_pct_mean, price_return_pct_std "
            "FROM clean_market_data WHERE window_start >= ? AND symbol = ? "
            "AND price_return_pct_std IS NOT NULL",
            "bitcoin",
        )
    }
    assert any(mean - 3 * std < 0 < mean + 3 * std for mean, std in baseline.values())
    open_dashboard(page, f"{base_url}/volatility?symbol=bitcoin")
    lower = {five_min(t): v for t, v in drawn_line(page, "chart-returns", "lower")}
    upper = {five_min(t): v for t, v in drawn_line(page, "chart-returns", "band")}
    assert set(lower) == set(upper) == set(baseline)
    for start, (mean, std) in baseline.items():
        # pixels back to values: exact to well under a pixel of a ~300 px tall axis
        tolerance = 6 * std / 100 + 1e-6
        assert lower[start] == pytest.approx(mean - 3 * std, abs=tolerance), start
        assert upper[start] == pytest.approx(mean + 3 * std, abs=tolerance), start


@pytest.mark.parametrize("width", [1440, 390])
def test_time_labels_never_overlap_at_1h(browser: Browser, base_url: str, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    for dash in ("overview", "alerts", "volatility"):
        open_dashboard(page, f"{base_url}/{dash}?range=1h")
        charts = page.evaluate("Object.keys(window.tickwatch.charts)")
        axes = 0
        for chart in charts:
            for labels in time_axis_labels(page, chart):
                axes += 1
                assert len(labels) >= 2, (dash, chart, labels)
                for (_, right), (left, _) in itertools.pairwise(labels):
                    assert right <= left, (dash, chart, labels)
        assert axes >= 1, dash
    # the hourly charts span the range's hours, not days around one bar
    open_dashboard(page, f"{base_url}/alerts?range=1h")
    extent = page.evaluate(
        "window.tickwatch.charts['chart-per-hour'].getModel().getComponent('xAxis', 0)"
        ".axis.scale.getExtent()"
    )
    assert extent[1] - extent[0] <= 2 * 3_600_000
    context.close()


def test_alert_table_fits_a_phone(browser: Browser, base_url: str):
    """On a 390 px phone the page does not scroll sideways; each episode shows its time,
    symbol, severity, |z| and summary inside the screen; an opened episode's windows scroll
    sideways inside their own box."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = context.new_page()
    open_dashboard(page, f"{base_url}/alerts?range=all")
    page.wait_for_selector("#alert-table tbody tr[data-key]")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    rows = page.locator("#alert-table tbody tr[data-key]")
    assert rows.count() >= 2
    for i in range(rows.count()):
        for column in (1, 2, 5, 7, 9):  # opened, symbol, peak severity, peak |z|, summary
            box = rows.nth(i).locator(f"td:nth-child({column})").bounding_box()
            assert box is not None and box["width"] > 0, (i, column)
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (i, column, box)
    screenshot(page, "phone-alerts", full_page=False)  # what a phone shows first
    rows.first.click()
    cell = page.wait_for_selector("#alert-table tr.windows > td")
    assert cell is not None
    page.wait_for_selector("#alert-table tr.windows .drill-chart[data-state]")
    box = cell.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_percent_axes_carry_their_unit(page: Page, base_url: str):
    open_dashboard(page, f"{base_url}/volatility")
    for chart, axis in (
        ("chart-rolling-vol", "yAxis"),
        ("chart-returns", "yAxis"),
        ("chart-vol-compare", "xAxis"),
    ):
        labels = axis_labels(page, chart, axis)
        assert labels and all(label.endswith("%") for label in labels), (chart, labels)


def test_every_alert_in_range_is_in_the_table(page: Page, base_url: str, settings: Settings):
    expected = alert_ids_in_range(settings)
    open_dashboard(page, f"{base_url}/alerts")
    shown: list[str] = []
    while True:
        page.wait_for_selector("#alert-table tbody tr[data-key]")
        shown += page.eval_on_selector_all(
            "#alert-table tbody tr[data-key]", "(rows) => rows.map((r) => r.dataset.key)"
        )
        if page.is_disabled("#next"):
            break
        first = shown[-1]
        page.click("#next")
        page.wait_for_selector(f'#alert-table tbody tr[data-key="{first}"]', state="detached")
    assert len(shown) == len(set(shown))
    assert set(shown) == expected


def test_z_histogram_top_bin_holds_everything_beyond(page: Page, base_url: str, settings: Settings):
    z = [float(str(v)) for (v,) in rows_24h(
        settings, "SELECT z_score FROM market_anomalies WHERE window_start >= ?"
    )]  # fmt: skip
    open_dashboard(page, f"{base_url}/alerts")
    chart = option(page, "chart-z-hist")
    labels, counts = chart["xAxis"][0]["data"], chart["series"][0]["data"]
    by_label = dict(zip(labels, [c["value"] for c in counts], strict=True))
    assert by_label.get("≥ 9", 0) == sum(1 for v in z if v >= 9)
    assert "9" not in by_label  # the open bin is never labelled as if it were [9, 10)


def test_api_docs_work_offline(browser: Browser, base_url: str):
    """Swagger UI and ReDoc come from the package: nothing is fetched from elsewhere and no
    script is blocked. (ReDoc's "powered by" badge points at its CDN; the CSP blocks it.)"""
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def only_loopback(route: Route) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.goto(f"{base_url}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    operations = page.locator(".opblock").count()
    page.goto(f"{base_url}/redoc")
    page.get_by_text("/api/windows").first.wait_for(timeout=15_000)
    context.close()
    badge = "cdn.redoc.ly/redoc/logo-mini.svg"
    assert outside == [] and operations >= 8
    assert [e for e in errors if badge not in e] == []
