"""The real Runtime with both live sources pointed at a loopback server replaying API bodies.

Windows must arrive in the SQLite store from both sources; when one API only fails, the other
source and the engine carry on, and the failing source's health says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tickwatch.config import Settings
from tickwatch.runtime import Runtime
from tickwatch.sources.live import live_reachable, live_sources

DATA = Path(__file__).parents[1] / "data"


def body(name: str, status: int = 200) -> Response:
    return Response((DATA / name).read_bytes(), status=status, content_type="application/json")


def serve(server: HTTPServer, av: list[str], crypto_price: int = 200) -> None:
    polls = iter(av)
    last = [av[-1]]

    def alphavantage(request: Request) -> Response:
        if request.method == "HEAD":  # the reachability probe is not a poll
            return Response(status=200)
        last[0] = next(polls, last[0])
        return body(f"alphavantage/{last[0]}")

    server.expect_request("/query").respond_with_handler(alphavantage)
    for coin in ("bitcoin", "ethereum"):
        server.expect_request(f"/cg/coins/{coin}/market_chart").respond_with_response(
            body(f"coingecko/market_chart_{coin}.json", crypto_price)
        )
    server.expect_request("/cg/simple/price").respond_with_response(
        body("coingecko/simple_price.json", crypto_price)
    )


def settings(server: HTTPServer, tmp_path: Path) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "alpha_vantage_base_url": server.url_for("/query"),
        "alpha_vantage_api_key": "testkey",
        "alpha_vantage_calls_per_minute": 600,
        "alpha_vantage_calls_per_day": 1_000_000,
        "stock_symbols": ["IBM"],
        "stock_poll_interval": 1,
        "crypto_source": "coingecko",
        "coingecko_base_url": server.url_for("/cg"),
        "crypto_ids": ["bitcoin", "ethereum"],
        "coingecko_calls_per_minute": 600,
        "crypto_poll_interval": 1,
        "request_timeout": 2.0,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def windows_by_symbol(path: Path) -> dict[str, int]:
    engine = sa.create_engine(f"sqlite:///{path / 'tickwatch.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT symbol, COUNT(*) FROM clean_market_data GROUP BY symbol")
        ).all()
    engine.dispose()
    return {symbol: n for symbol, n in rows}


def run_until(runtime: Runtime, done: Callable[[], bool], limit: float = 20.0) -> None:
    runtime.start()
    deadline = time.monotonic() + limit
    try:
        while not done() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        runtime.shutdown()


def test_both_live_sources_fill_the_store(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve(httpserver, ["intraday_ibm.json", "intraday_ibm_next.json"])
    config = settings(httpserver, tmp_path)
    assert live_reachable(config, timeout=2.0)
    sources = live_sources(config)
    runtime = Runtime(config, sources)
    # 6 IBM bars + bitcoin 4 chart points and 1 price + ethereum 2 and 1 = 14 ticks
    run_until(runtime, lambda: runtime.processor.counters.accepted >= 14)
    # At shutdown every open window closes: IBM 6; bitcoin 15:00/05/10/15; ethereum 15:00/05/15.
    assert windows_by_symbol(tmp_path) == {"IBM": 6, "bitcoin": 4, "ethereum": 3}
    assert {s.name: s.health.state for s in sources} == {"alphavantage": "ok", "coingecko": "ok"}


def test_a_failing_source_does_not_stop_the_other(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve(httpserver, ["error_message.json"])
    config = settings(httpserver, tmp_path)
    sources = live_sources(config)
    runtime = Runtime(config, sources)
    run_until(
        runtime,
        lambda: (
            len([r for r in httpserver.log if r[0].path == "/cg/simple/price"]) >= 1
            and len([r for r in httpserver.log if r[0].path == "/query"]) >= 2
        ),
    )
    assert windows_by_symbol(tmp_path) == {"bitcoin": 4, "ethereum": 3}
    health = {s.name: s.health for s in sources}
    assert health["alphavantage"].state == "down"
    assert "Invalid API call" in health["alphavantage"].message
    assert health["coingecko"].state == "ok"
    assert all(t.state != "backoff" for t in runtime.supervisor.tasks.values())


def test_crypto_outage_leaves_stocks_flowing(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve(httpserver, ["intraday_ibm.json"], crypto_price=503)
    config = settings(httpserver, tmp_path)
    sources = live_sources(config)
    runtime = Runtime(config, sources)
    run_until(
        runtime,
        lambda: runtime.processor.counters.accepted >= 4 and sources[1].health.state == "degraded",
    )
    assert windows_by_symbol(tmp_path) == {"IBM": 4}
    assert "HTTP 503" in sources[1].health.message


def test_produce_once_writes_the_replay_format(httpserver: HTTPServer, tmp_path: Path) -> None:
    import orjson
    from typer.testing import CliRunner

    from tickwatch.cli import app

    serve(httpserver, ["intraday_ibm.json"])
    env = {
        "ALPHA_VANTAGE_BASE_URL": httpserver.url_for("/query"),
        "ALPHA_VANTAGE_API_KEY": "testkey",
        "STOCK_SYMBOLS": "IBM",
        "CRYPTO_SOURCE": "coingecko",
        "COINGECKO_BASE_URL": httpserver.url_for("/cg"),
        "CRYPTO_IDS": "bitcoin,ethereum",
        "DATA_DIR": str(tmp_path),
    }
    for market, expected in (("stocks", 4), ("crypto", 2)):
        out = tmp_path / f"{market}.jsonl"
        result = CliRunner().invoke(app, ["produce", market, "--once", "--out", str(out)], env=env)
        assert result.exit_code == 0, result.output
        records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        assert len(records) == expected
    assert records[0]["symbol"] == "bitcoin" and records[0]["volume"] is None
    calls = [r[0].path for r in httpserver.log if r[0].method == "GET"]
    assert calls == ["/query", "/cg/simple/price"]  # one call each; no warm start with --once
