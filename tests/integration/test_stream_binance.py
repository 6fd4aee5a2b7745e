"""Binance's aggTrade stream against a loopback venue: the recorded REST aggTrades
(binance_rest_v3_aggTrades_BTCUSDT.json, ids 966492862-966492871) played as stream messages,
a gap backfilled from the loopback `GET /api/v3/aggTrades?fromId=`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from werkzeug import Request, Response

from tests.integration.stream_venue import LoopbackVenue
from tests.integration.test_stream_coinbase import collect, trades_of
from tickwatch.config import Settings
from tickwatch.sources.streams import stream_source

STREAMS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "recorded" / "streams"
ROWS = json.loads((STREAMS / "binance_rest_v3_aggTrades_BTCUSDT.json").read_text())
FIRST = ROWS[0]["a"]  # 966492862


def message(row: dict[str, Any]) -> str:
    return json.dumps({"e": "aggTrade", "E": row["T"] + 1, "s": "BTCUSDT", **row})


def test_an_id_gap_is_backfilled_and_repeats_dropped(tmp_path, httpserver):
    calls: list[dict[str, str]] = []

    def agg_trades(request: Request) -> Response:
        calls.append(dict(request.args))
        start = int(request.args["fromId"])
        rows = [r for r in ROWS if r["a"] >= start][: int(request.args["limit"])]
        return Response(json.dumps(rows), content_type="application/json")

    httpserver.expect_request("/api/v3/aggTrades").respond_with_handler(agg_trades)
    live = [ROWS[i] for i in (0, 1, 2, 6, 1, 7, 8, 9)]  # 3-5 missing, 1 repeated
    with LoopbackVenue([['{"result":null,"id":1}', *(message(r) for r in live)]]) as venue:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "crypto_ids": ["bitcoin"],
            "crypto_source": "binance",
            "binance_ws_url": venue.url,
            "binance_rest_url": httpserver.url_for(""),
        }
        source = stream_source(Settings(_env_file=None, **values), "binance")  # type: ignore[call-arg]
        records = trades_of(collect(source, lambda rs: len(trades_of(rs)) == 10))
        assert json.loads(venue.subscriptions[0][0])["params"] == ["btcusdt@aggTrade"]
    assert [r["trade_id"] for r in records] == [r["a"] for r in ROWS]
    assert calls == [{"symbol": "BTCUSDT", "fromId": str(FIRST + 3), "limit": "1000"}]
    first = records[0]
    assert (first["symbol"], first["market"], first["price"], first["volume"]) == (
        "bitcoin-usdt", "BTCUSDT", 60759.6, 0.00841,
    )  # fmt: skip
    assert first["event_time"].isoformat() == "2021-10-22T23:08:16.633000+00:00"  # T in ms
    assert source.health.figures["duplicates"] == 1
