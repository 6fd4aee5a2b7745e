"""Stored XSS: symbols that are HTML must be shown as text, never run, in real Chromium.

A simulated day goes through the real pipeline; then its symbols are renamed in the store (plain
sqlite3) to hostile HTML, as a store written by another process or an older version could hold
them. Every chart's tooltip is opened for every series (ECharts renders tooltips as HTML), the
alert table and price cards are drawn, and afterwards: no element the payloads would create
exists, no payload ran (`window.__xss` untouched), the console has no CSP violation (the page
fixture fails on console errors), and the symbols are readable as text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.e2e.chromium import open_dashboard, serve
from tests.ledger import Ledger
from tickwatch.config import Settings
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.web import create_app

pytestmark = pytest.mark.browser

START = datetime(2024, 3, 4, 8, tzinfo=UTC)  # 14 h: US stocks trade 14:30-21:00 UTC
HOSTILE = {
    "AAA": '<img src=x onerror="window.__xss=1">',
    "BBB": "\"'><svg onload=window.__xss=2><u>underlined</u>",
    "ccc": "</td><script>window.__xss=3</script>{a|b}",
}
PAGES = ["/overview", "/alerts", "/volatility"]
PAYLOAD_TAGS = "img, svg, script:not([src]), iframe, u"  # none of these is in the page


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("hostile")
    settings = Settings(
        data_dir=data, store_url=None, stock_symbols=["AAA", "BBB"], crypto_ids=["ccc"]
    )
    store = SqlStore(settings.database_url)
    processor = Processor(settings, store, None, clock=lambda: START + timedelta(days=1))
    simulator = MarketSimulator(["AAA", "BBB"], ["ccc"], 11, anomaly_rate=0.05)
    for ticks in simulator.windows(START, START + timedelta(hours=14)):
        processor.handle([tick_to_record(t) for t in ticks])
    processor.finish()
    store.close()
    with sqlite3.connect(Path(settings.database_url.removeprefix("sqlite:///"))) as conn:
        for plain, hostile in HOSTILE.items():
            for table in ("clean_market_data", "market_anomalies"):
                conn.execute(f"UPDATE {table} SET symbol = ? WHERE symbol = ?", (hostile, plain))
            conn.execute(
                "UPDATE alerts SET symbol = ?, summary = replace(summary, ?, ?) WHERE symbol = ?",
                (hostile, plain, hostile, plain),
            )
    return settings


@pytest.fixture(scope="module")
def base_url(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


def open_every_tooltip(page: Page) -> int:
    """showTip on the first points of every series of every chart; the tooltips opened."""
    opened: int = page.evaluate(
        """() => {
            let opened = 0;
            for (const chart of Object.values(window.tickwatch.charts)) {
                if (chart.isDisposed()) continue;
                const series = chart.getOption().series || [];
                series.forEach((s, i) => {
                    const n = Array.isArray(s.data) ? s.data.length : 0;
                    for (const d of [0, Math.floor(n / 2), n - 1]) {
                        if (d < 0) continue;
                        chart.dispatchAction({ type: "showTip", seriesIndex: i, dataIndex: d });
                        opened += 1;
                    }
                });
            }
            for (const spark of document.querySelectorAll("#prices .spark")) {
                const chart = echarts.getInstanceByDom(spark);
                if (!chart) continue;
                chart.dispatchAction({ type: "showTip", seriesIndex: 0, dataIndex: 0 });
                opened += 1;
            }
            return opened;
        }"""
    )
    return opened


def tooltip_texts(page: Page) -> list[str]:
    texts: list[str] = page.evaluate(
        """() => [...document.querySelectorAll("div")]
            .filter((d) => (d.getAttribute("style") || "").includes("z-index: 9999999"))
            .map((d) => d.textContent)"""
    )
    return texts


def test_hostile_symbols_render_as_text_and_never_run(
    page: Page, base_url: str, ledger: Ledger
) -> None:
    page.add_init_script("window.__xss = 0")
    found: list[str] = []
    tooltips = 0
    shown_as_text: set[str] = set()
    for path in [*PAGES, "/overview?symbol=" + HOSTILE["AAA"].replace("&", "%26")]:
        open_dashboard(page, base_url + path)
        page.wait_for_timeout(300)
        tooltips += open_every_tooltip(page)
        page.wait_for_timeout(200)
        created = page.evaluate(f"document.querySelectorAll({PAYLOAD_TAGS!r}).length")
        ran = page.evaluate("window.__xss")
        if created or ran:
            found.append(f"{path}: {created} payload elements, __xss={ran}")
        body = page.inner_text("body") + "\n".join(tooltip_texts(page))
        shown_as_text |= {h for h in HOSTILE.values() if h in body}
    head = page.request.get(base_url + "/overview").headers.get("content-security-policy", "")
    policy = "script-src 'self'" if "script-src 'self';" in head else "missing"
    ledger.record(
        "security",
        "stored XSS: HTML symbols in every chart tooltip, table and card (Chromium)",
        tooltips,
        "0 payload elements or runs, 3 symbols shown as text, CSP script-src 'self'",
        f"{len(found)} payload elements or runs, {len(shown_as_text)} symbols shown as text, "
        f"CSP {policy}",
    )
    assert found == [], found
    assert shown_as_text == set(HOSTILE.values())
    assert policy != "missing"


def test_alert_table_shows_hostile_symbol_as_text(page: Page, base_url: str) -> None:
    open_dashboard(page, f"{base_url}/alerts?range=all")
    cells = page.eval_on_selector_all(
        "#alert-table tbody td b", "(bs) => bs.map((b) => b.textContent)"
    )
    assert cells and set(cells) <= set(HOSTILE.values())
    summaries = page.eval_on_selector_all(
        "#alert-table tbody td.summary", "(tds) => tds.map((td) => td.textContent)"
    )
    assert any(h in text for text in summaries for h in HOSTILE.values())
    page.click("#alert-table tbody tr[data-key]")  # its windows, drawn from the store too
    page.wait_for_selector("#alert-table tr.windows")
    assert page.locator("#alert-table img, #alert-table svg, #alert-table u").count() == 0
