"""Finnhub's stock trade stream against a loopback venue (Finnhub's documented shapes: no
public capture exists). The key travels in the URL and must never show in logs or health."""

from __future__ import annotations

import json
import logging
from typing import Any

from tests.integration.stream_venue import DROP, LoopbackVenue
from tests.integration.test_stream_coinbase import collect, trades_of
from tickwatch.config import Settings
from tickwatch.normalize import UnreadableRecord
from tickwatch.sources.streams import stream_source

KEY = "fh-key-7d1e93"


def trades(*rows: tuple[str, float, float, int]) -> str:
    data = [{"s": s, "p": p, "v": v, "t": t, "c": ["1"]} for s, p, v, t in rows]
    return json.dumps({"type": "trade", "data": data})


def test_trades_pings_an_outage_and_a_masked_key(tmp_path, capsys):
    from tickwatch.cli.common import setup_logging

    first = [
        '{"type":"ping"}',
        trades(("AAPL", 227.1, 100, 1700000000123), ("MSFT", 410.5, 3, 1700000000200)),
        trades(("AAPL", 227.2, 50, 1700000000123)),  # same millisecond: a second trade
        '{"type":"error","msg":"Subscribing to too many symbols"}',
        DROP,
    ]
    second = ['{"type":"ping"}', trades(("AAPL", 227.4, 10, 1700000009000))]
    with LoopbackVenue([first, second], subscribe_messages=2) as venue:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "stock_symbols": ["AAPL", "MSFT"],
            "stock_source": "finnhub",
            "finnhub_api_key": KEY,
            "finnhub_ws_url": venue.url,
            "stream_backoff_max": 0.5,
        }
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
        setup_logging("DEBUG", settings.secret_values())
        source = stream_source(settings, "finnhub")
        records = collect(source, lambda rs: len(trades_of(rs)) == 4)
        assert venue.paths[0] == f"/?token={KEY}"  # the key goes where Finnhub wants it
        assert [json.loads(m) for m in venue.subscriptions[1]] == [
            {"type": "subscribe", "symbol": "AAPL"},
            {"type": "subscribe", "symbol": "MSFT"},
        ]
    logging.getLogger().handlers.clear()
    got = trades_of(records)
    assert [(r["symbol"], r["price"], r["volume"], r["event_time"].isoformat()) for r in got] == [
        ("AAPL", 227.1, 100.0, "2023-11-14T22:13:20.123000+00:00"),
        ("MSFT", 410.5, 3.0, "2023-11-14T22:13:20.200000+00:00"),
        ("AAPL", 227.2, 50.0, "2023-11-14T22:13:20.123001+00:00"),  # 1 µs later: kept
        ("AAPL", 227.4, 10.0, "2023-11-14T22:13:29+00:00"),
    ]
    assert {(r["source"], r["asset_type"]) for r in got} == {("finnhub", "stock")}
    reasons = [r.reason for r in records if isinstance(r, UnreadableRecord)]
    assert "finnhub error: Subscribing to too many symbols" in reasons
    outage = [r for r in reasons if r.startswith("gap not backfilled")]
    assert len(outage) == 2 and all("no trade history endpoint" in r for r in outage)
    shown = capsys.readouterr().err + json.dumps(source.health.figures) + source.health.message
    assert KEY not in shown and "reconnecting" in shown
