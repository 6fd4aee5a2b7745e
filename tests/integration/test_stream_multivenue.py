"""CRYPTO_SOURCE=coinbase,kraken: two loopback venues stream bitcoin into the real Runtime.

Both venues trade at the same event times, 10 s apart from 00:00:00 to 00:02:00. Coinbase
always prints 60,000. In the shifted run Kraken prints 60,480 (+80 bps of 60,000) from 00:00:40
to 00:01:20 and 60,000 otherwise: a gap of 480 / ((60,480 + 60,000) / 2) = 79.68 bps, wider
than DIVERGENCE_BPS (50), for 50 s, longer than DIVERGENCE_SECONDS (30). Each event time is
one real pause apart on both venues, so the Runtime sees the two tapes interleaved in event
time whatever the order of the two trades of one instant.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pytest_httpserver import HTTPServer

from tests.integration.stream_venue import LoopbackVenue, Pause, Step, wait_until
from tests.integration.test_stream_coinbase import ACK, query, synthetic_match
from tests.integration.test_stream_kraken import STATUS, SUBSCRIBED
from tickwatch.config import Settings, load_settings
from tickwatch.errors import ConfigError
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.runtime import Runtime
from tickwatch.sources.live import live_sources
from tickwatch.web import create_app

T0 = datetime(2024, 3, 4, tzinfo=UTC)
INSTANTS = [T0 + timedelta(seconds=10 * k) for k in range(13)]  # 00:00:00 .. 00:02:00
SHIFTED = {T0 + timedelta(seconds=s) for s in (40, 50, 60, 70, 80)}
COINBASE_SIZE, KRAKEN_SIZE = 0.5, 0.25
PAUSE = Pause(0.5)  # real time between two instants, far above the venues' start skew


def kraken_trade(moment: datetime, price: float) -> str:
    row = [f"{price:.1f}", f"{KRAKEN_SIZE:.8f}", f"{moment.timestamp():.6f}", "b", "m", ""]
    return json.dumps([42, [row], "trade", "XBT/USD"])


def sessions(shift: bool) -> tuple[list[Step], list[Step]]:
    coinbase: list[Step] = [ACK]
    kraken: list[Step] = [STATUS, SUBSCRIBED]
    for trade_id, moment in enumerate(INSTANTS, start=1):
        coinbase += [PAUSE, synthetic_match(trade_id, moment, 60_000.0, COINBASE_SIZE)]
        price = 60_480.0 if shift and moment in SHIFTED else 60_000.0
        kraken += [PAUSE, kraken_trade(moment, price)]
    return coinbase, kraken


def run(shift: bool, tmp_path: Path, server: HTTPServer) -> tuple[dict[str, Any], Any]:
    """Both venues played to the end through the Runtime; its /health body and the
    stream-feeds check while both streams run."""
    coinbase_steps, kraken_steps = sessions(shift)
    with LoopbackVenue([coinbase_steps]) as coinbase, LoopbackVenue([kraken_steps]) as kraken:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "crypto_ids": ["bitcoin"],
            "stock_symbols": [],
            "crypto_source": "coinbase,kraken",
            "coinbase_ws_url": coinbase.url,
            "coinbase_rest_url": server.url_for(""),
            "kraken_ws_url": kraken.url,
            "kraken_rest_url": server.url_for(""),
            "stream_backoff_max": 0.5,
            "request_timeout": 2.0,
        }
        chosen = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        runtime = Runtime(chosen, live_sources(chosen))
        runtime.start()
        try:
            everything = 2 * len(INSTANTS)
            wait_until(lambda: runtime.counters.accepted == everything, what="both venues' trades")
            app = create_app(chosen, simulated=False, pipeline=runtime)
            with TestClient(app, base_url="http://127.0.0.1") as client:
                health: dict[str, Any] = client.get("/health").json()
            feeds = run_check("stream-feeds", OpsContext(chosen, now=datetime.now(UTC)))
        finally:
            runtime.shutdown()
    assert runtime.counters.rejected == 0 and runtime.counters.duplicates == 0
    return health, feeds


def consolidated_window(data_dir: Path) -> list[tuple[Any, ...]]:
    sql = "SELECT window_start, tick_count, volume FROM clean_market_data WHERE symbol = 'bitcoin'"
    return [
        (datetime.fromisoformat(str(r[0])).replace(tzinfo=UTC), *r[1:])
        for r in query(data_dir, sql)
    ]


@pytest.mark.timeout(60)
def test_a_shifted_venue_is_a_divergence_and_names_itself(tmp_path, httpserver):
    health, feeds = run(True, tmp_path, httpserver)
    rows = query(
        tmp_path,
        "SELECT symbol, venues, started_at, ended_at, max_bps, max_at, offender, kind "
        "FROM divergences",
    )
    [(symbol, venues, started, ended, max_bps, max_at, offender, kind)] = rows
    assert (symbol, venues, offender) == ("bitcoin", "coinbase|kraken", "kraken")
    at = {name: datetime.fromisoformat(str(v)).replace(tzinfo=UTC) for name, v in
          (("started", started), ("ended", ended), ("max", max_at))}  # fmt: skip
    # the first shifted instant, the first instant Kraken is back, the gap at its first print
    assert at == {
        "started": T0 + timedelta(seconds=40),
        "ended": T0 + timedelta(seconds=90),
        "max": T0 + timedelta(seconds=40),
    }
    assert max_bps == pytest.approx(480 / 60_240 * 10_000)  # 79.681 bps
    # Kraken came back to its own price and Coinbase never moved: a bad print, not a move
    assert kind == "data_fault"
    # one window holds both venues' tapes: 13 trades each, sizes summed
    assert consolidated_window(tmp_path) == [(T0, 26, pytest.approx(13 * 0.75))]
    shown = {s["name"]: s["figures"]["connected"] for s in health["sources"]}
    assert shown == {"coinbase": True, "kraken": True}
    assert feeds.verdict is Verdict.OK and set(feeds.figures) == {"coinbase", "kraken"}


@pytest.mark.timeout(60)
def test_venues_that_agree_leave_no_divergence(tmp_path, httpserver):
    run(False, tmp_path, httpserver)
    assert query(tmp_path, "SELECT * FROM divergences") == []
    assert consolidated_window(tmp_path) == [(T0, 26, pytest.approx(13 * 0.75))]


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("coinbase,bitstamp", "unknown crypto source 'bitstamp'"),
        ("kraken, coinbase,kraken", "'kraken' is listed twice"),
        ("coinbase,", "unknown crypto source ''"),
    ],
)
def test_a_bad_venue_list_is_a_clear_config_error(value, complaint):
    with pytest.raises(ConfigError) as caught:
        load_settings(crypto_source=value)
    message = str(caught.value)
    assert "CRYPTO_SOURCE" in message and complaint in message
    assert "coingecko, coinbase, kraken, binance" in message  # the allowed values


def test_one_venue_or_several_become_one_source_each(tmp_path):
    def names(crypto_source: str) -> list[str]:
        chosen = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp_path, stock_symbols=[], crypto_source=crypto_source
        )
        return [source.name for source in live_sources(chosen)]

    assert names("kraken") == ["kraken"]
    assert names(" coinbase , kraken ") == ["coinbase", "kraken"]
    assert len(names("coingecko,binance")) == 2
