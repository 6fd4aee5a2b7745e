"""Kraken's v1 trade stream against a loopback venue, and the reader's bounded inbox.

Kraken v1 trades carry no id: after a reconnect the stream backfills by time from the REST
trades endpoint, which here serves the recorded `kraken_rest_public_trades_XBTUSDT.json`
(1000 trades; 182 share a timestamp, 15 equal another in time, price and volume). The live
messages are those rows in the WebSocket's shape, times as 6-decimal text.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.integration.stream_venue import DROP, LoopbackVenue, Step
from tests.integration.test_stream_coinbase import (
    collect,
    trades_of,
)
from tickwatch.config import Settings
from tickwatch.sources.streams import stream_source

STREAMS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "recorded" / "streams"
BODY = json.loads((STREAMS / "kraken_rest_public_trades_XBTUSDT.json").read_text())
ROWS: list[list[Any]] = BODY["result"]["XBTUSDT"]
STATUS = '{"connectionID":18239578009413566319,"event":"systemStatus","status":"online"}'
SUBSCRIBED = (
    '{"channelID":42,"channelName":"trade","event":"subscriptionStatus","pair":"XBT/USD",'
    '"status":"subscribed","subscription":{"name":"trade"}}'
)
HEARTBEAT = '{"event":"heartbeat"}'


def live(row: list[Any]) -> str:
    return json.dumps(
        [42, [[row[0], row[1], f"{row[2]:.6f}", row[3], row[4], ""]], "trade", "XBT/USD"]
    )


def serve_kraken(server: HTTPServer) -> list[dict[str, str]]:
    """Kraken's trades endpoint: the recorded rows at or after `since` (ns), 1000 at most."""
    calls: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        calls.append(dict(request.args))
        since = Decimal(request.args.get("since", "0")) / 10**9
        rows = [row for row in ROWS if Decimal(repr(row[2])) >= since][:1000]
        last = str(int(Decimal(repr(rows[-1][2])) * 10**9)) if rows else request.args["since"]
        body = {"error": [], "result": {"XBTUSDT": rows, "last": last}}
        return Response(json.dumps(body), content_type="application/json")

    server.expect_request("/0/public/Trades").respond_with_handler(handler)
    return calls


def kraken_settings(venue: LoopbackVenue, server: HTTPServer, tmp_path: Path) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "crypto_ids": ["bitcoin"],
        "crypto_source": "kraken",
        "kraken_ws_url": venue.url,
        "kraken_rest_url": server.url_for(""),
        "stream_backoff_max": 0.5,
        "request_timeout": 2.0,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def play(sessions: list[list[Step]], server: HTTPServer, tmp_path: Path) -> list[Any]:
    with LoopbackVenue(sessions) as venue:
        source = stream_source(kraken_settings(venue, server, tmp_path), "kraken")
        return trades_of(collect(source, lambda rs: len(trades_of(rs)) >= len(ROWS)))


def comparable(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["price"], r["volume"], r["symbol"]) for r in records]


def micros(record: dict[str, Any]) -> int:
    moment: datetime = record["event_time"]
    return round(moment.timestamp() * 1e6)


def test_a_reconnect_is_backfilled_by_time_without_loss_or_duplicates(tmp_path, httpserver):
    calls = serve_kraken(httpserver)
    head = [STATUS, SUBSCRIBED, HEARTBEAT]
    whole = play([[*head, *(live(r) for r in ROWS)]], httpserver, tmp_path / "whole")
    assert calls == []  # no outage, no backfill
    cut = 400
    broken = play(
        [
            [*head, *(live(r) for r in ROWS[:cut]), DROP],
            [*head, *(live(r) for r in ROWS[cut + 200 :])],
        ],
        httpserver,
        tmp_path / "broken",
    )
    assert len(calls) >= 1 and calls[0]["pair"] == "XBTUSD"
    # every recorded trade once: the 15 pairs equal in time, price and volume included
    assert sorted((r["price"], r["volume"]) for r in whole) == sorted(
        (float(r[0]), float(r[1])) for r in ROWS
    )
    assert comparable(broken) == comparable(whole)
    # a backfilled trade's time comes from a REST float, a live one's from 6-decimal text: the
    # two may round the same instant 1 µs apart, never more
    assert max(abs(micros(a) - micros(b)) for a, b in zip(broken, whole, strict=True)) <= 1
    # trades sharing a microsecond got distinct event times, so the engine keeps each one
    assert len({r["event_time"] for r in whole}) == len(ROWS)
    assert {r["symbol"] for r in whole} == {"bitcoin"} and whole[0]["market"] == "XBT/USD"


def test_subscription_refused_shows_in_health(tmp_path, httpserver):
    refused = (
        '{"errorMessage":"Currency pair not supported","event":"subscriptionStatus",'
        '"pair":"XBT/USD","status":"error","subscription":{"name":"trade"}}'
    )
    with LoopbackVenue([[STATUS, refused, HEARTBEAT]]) as venue:
        source = stream_source(kraken_settings(venue, httpserver, tmp_path), "kraken")
        stop = threading.Event()
        batches = source.batches(stop)
        letters = next(batches)
        while_connected = dict(source.health.figures)
        stop.set()
        list(batches)
    assert [r.reason for r in letters] == ["kraken error: XBT/USD: Currency pair not supported"]
    assert source.health.state == "degraded"
    assert "Currency pair not supported" in source.health.message
    assert while_connected["connected"] is True and while_connected["venue_errors"] == 1
