"""The three dashboards in headless Chromium (Debian's package) driven by Playwright.

A simulated day goes through the real pipeline into SQLite; `tickwatch serve`'s app serves it on
loopback. Each dashboard must load without console errors and show the stored numbers (read
back here with plain sqlite3, not through the app); an anomaly written while the alert page is
open must appear in its table within 5 seconds. Screenshots go to test-artifacts/ and
docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.chromium import open_dashboard, serve
from tickwatch.config import Settings
from tickwatch.model import Anomaly, AnomalyType, AssetType, Severity
from tickwatch.normalize import tick_to_record
from tickwatch.processor import Processor
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
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
    with db(settings) as conn:
        value: str = conn.execute("SELECT max(window_end) FROM clean_market_data").fetchone()[0]
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


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)  # let the last chart paint
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
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


def test_anomaly_alerts_live_row(page: Page, base_url: str, settings: Settings) -> None:
    total, _, _ = last_day_counts(settings)
    open_dashboard(page, f"{base_url}/alerts")
    assert page.locator("#alert-table tbody tr").count() == min(50, total)
    for chart in ("chart-per-hour", "chart-z-hist", "chart-top-symbols", "chart-by-asset"):
        chart_ready(page, chart)
    page.wait_for_selector("#live.on", timeout=5_000)

    start = datetime.fromisoformat(newest(settings))
    fresh = Anomaly(
        "bitcoin", AssetType.CRYPTO, start, start + timedelta(minutes=5),
        AnomalyType.VOLUME_SURGE, 99.0, 3.0, 2.0, 48.0, Severity.HIGH, DETECTED_LIVE,
    )  # fmt: skip
    store = SqlStore(settings.database_url)
    store.write([], [fresh])
    store.close()
    key = f"bitcoin|{start.strftime('%Y-%m-%dT%H:%M:%SZ')}|volume_surge"
    row = page.wait_for_selector(f'#alert-table tr[data-key="{key}"]', timeout=5_000)
    assert row is not None
    assert "+48.00" in row.inner_text()
    assert "high" in (row.get_attribute("class") or "")
    page.wait_for_timeout(2_500)  # the panels refresh after a live alert
    screenshot(page, "anomaly-alerts")


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
