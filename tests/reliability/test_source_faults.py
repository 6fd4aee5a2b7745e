"""A live source whose server hangs: it times out, its health says why, and the other source
and the engine keep going (the real Runtime, both sources on loopback HTTP servers).

The healthy CoinGecko server answers from a market clock that runs 600x real time, so each
poll (about one real second apart) brings a price ten market minutes later and closes windows;
the Alpha Vantage server accepts every request and never answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.ledger import Ledger
from tickwatch.config import load_settings
from tickwatch.runtime import Runtime
from tickwatch.sources.alphavantage import AlphaVantageSource
from tickwatch.sources.coingecko import CoinGeckoSource
from tickwatch.web.app import health_report
from tickwatch.web.storeview import StoreView

T0 = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)
RATE = 600.0  # market seconds per real second
TIMEOUT = 0.5  # REQUEST_TIMEOUT, seconds


class MarketClock:
    def __init__(self) -> None:
        self.began = time.monotonic()

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=(time.monotonic() - self.began) * RATE)


def coingecko(clock: MarketClock):
    def handle(request: Request) -> Response:
        now = clock()
        if request.path.endswith("/market_chart"):
            start = now - timedelta(days=1)
            points = [
                [(start + timedelta(minutes=5 * i)).timestamp() * 1000, 60_000 + (i % 7) * 10]
                for i in range(288)
            ]
            body: object = {"prices": points, "market_caps": [], "total_volumes": []}
        else:
            body = {"bitcoin": {"usd": 60_050.0, "last_updated_at": int(now.timestamp())}}
        return Response(orjson.dumps(body), 200, content_type="application/json")

    return handle


@pytest.fixture
def hanging() -> Iterator[HTTPServer]:
    """A server that takes every request and never answers (until the test ends)."""
    release = threading.Event()

    def hang(_request: Request) -> Response:
        release.wait(60)
        return Response("{}", 200, content_type="application/json")

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request("/query").respond_with_handler(hang)
    server.start()
    yield server
    release.set()
    server.stop()


def test_hanging_source_times_out_and_the_rest_keeps_running(
    ledger: Ledger, hanging: HTTPServer, httpserver: HTTPServer, tmp_path: Path
):
    clock = MarketClock()
    httpserver.expect_request("/api/v3/coins/bitcoin/market_chart").respond_with_handler(
        coingecko(clock)
    )
    httpserver.expect_request("/api/v3/simple/price").respond_with_handler(coingecko(clock))
    settings = load_settings(
        data_dir=tmp_path,
        alpha_vantage_base_url=hanging.url_for("/query"),
        crypto_source="coingecko",
        coingecko_base_url=httpserver.url_for("/api/v3"),
        stock_symbols="AAPL",
        crypto_ids="bitcoin",
        request_timeout=TIMEOUT,
        crypto_poll_interval=1,
        coingecko_calls_per_minute=600,
        alpha_vantage_calls_per_minute=600,
    )
    stuck = AlphaVantageSource(settings)
    healthy = CoinGeckoSource(settings, clock=clock)
    runtime = Runtime(settings, [stuck, healthy], clock=clock)
    began = time.monotonic()
    runtime.start()
    try:
        deadline = began + 30
        while time.monotonic() < deadline and stuck.health.state in ("ok", "starting"):
            time.sleep(0.1)
        noticed = time.monotonic() - began
        windows_then = runtime.counters.windows
        time.sleep(4)  # the hanging source is still retrying; the healthy one polls on
        windows_now = runtime.counters.windows
        view = StoreView(runtime.store.engine, read_only=False)
        body = health_report(view, runtime, simulated=False, checks=[])
        tasks = {t["name"]: t["state"] for t in body["pipeline"]["tasks"]}
    finally:
        runtime.shutdown()
    stopped_in = time.monotonic() - began - noticed - 4
    message = stuck.health.message
    ok = (
        "timed out" in message
        and stuck.health.state in ("degraded", "down")
        and healthy.health.state == "ok"
        and windows_now > windows_then > 0
        and body["status"] == "degraded"
    )
    ledger.record(
        "faults",
        "live source hanging (no answer within REQUEST_TIMEOUT)",
        1,
        "hanging source says 'timed out', other source ok, windows keep closing",
        "hanging source says 'timed out', other source ok, windows keep closing"
        if ok
        else f"{stuck.health.state}: {message!r}, {healthy.health.state}, windows "
        f"{windows_then}->{windows_now}, health {body['status']}",
    )
    assert "timed out" in message and stuck.health.state in ("degraded", "down"), message
    assert healthy.health.state == "ok", healthy.health.message
    assert windows_now > windows_then > 0
    assert body["status"] == "degraded" and tasks["engine"] in ("running", "ok"), tasks
    assert noticed < 3 * TIMEOUT + 10 and stopped_in < 15  # attempts plus backoff; stop is prompt
