"""The dashboard's divergence card in real Chromium, over a store the real pipeline filled
from two venues' ticks (tests/unit/test_processor_divergence.py: kraken 400 above coinbase's
50,000 from 12:01 to 12:25 UTC, then back: 79.68 bps at most, a data fault on kraken)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chromium import open_dashboard, serve
from tests.unit.test_processor_divergence import NOW, RECORDS
from tickwatch.config import Settings
from tickwatch.processor import Processor
from tickwatch.store import SqlStore
from tickwatch.web import create_app

pytestmark = pytest.mark.browser


def test_the_alerts_tab_lists_the_divergence(tmp_path: Path, page: Page) -> None:
    settings = Settings(data_dir=tmp_path, store_url=None, max_clock_skew_seconds=10**9)
    store = SqlStore(settings.database_url)
    processor = Processor(settings, store, None, clock=lambda: NOW)
    processor.handle(RECORDS)
    processor.finish()
    store.close()
    with serve(create_app(settings)) as url:
        open_dashboard(page, f"{url}/alerts?range=all")
        row = page.locator("#divergence-table tbody tr")
        expect(row).to_have_count(1)
        cells = row.locator("td")
        # started 12:01:00, ended 12:25:00: 1,440 s; 400 / 50,200 * 10,000 = 79.68 bps
        expect(cells).to_have_text(
            [
                "2024-05-01 12:01",
                "BTC-USD",
                "coinbase vs kraken",
                "80",
                "1440 s",
                "kraken",
                "data fault",
                "coinbase vs kraken: up to 80 bps for 1440 s; kraken looks off; "
                "kraken came back to its own price; no venue followed",
            ]
        )
        page.close()  # before the server stops: no refused reconnect in the console
