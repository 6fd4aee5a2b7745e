"""Coinbase's trade stream against a loopback venue: a real websockets server playing `match`
messages made from the recorded REST trades (coinbase_rest_products_trades_nock_bodies.jsonl,
1411 BTC-USD trades, ids 8408015-8409425), and a loopback REST endpoint serving those recorded
rows with Coinbase's paging (`after=N`: the 100 trades below id N, newest first).

The key test: the real Runtime stores the same windows with a disconnect mid-window as
without one, and both equal windows computed here straight from the recorded rows.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.integration.stream_venue import DROP, LoopbackVenue, Pause, Step, wait_until
from tickwatch.config import Settings
from tickwatch.normalize import UnreadableRecord
from tickwatch.runtime import Runtime
from tickwatch.sources.streams import stream_source
from tickwatch.sources.streams.status import read_status

STREAMS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "recorded" / "streams"
BODIES = STREAMS / "coinbase_rest_products_trades_nock_bodies.jsonl"
ROWS = {
    row["trade_id"]: row
    for line in BODIES.read_text().splitlines()
    if line.strip()
    for row in json.loads(line)
}
FIRST, LAST = min(ROWS), max(ROWS)
REFUSED = '{"type":"error","message":"Failed to subscribe","reason":"BTC-XYZ is not valid"}'
ACK = '{"type":"subscriptions","channels":[{"name":"matches","product_ids":["BTC-USD"]}]}'


def match(trade_id: int) -> str:
    row = ROWS[trade_id]
    return json.dumps(
        {
            "type": "match",
            "trade_id": trade_id,
            "maker_order_id": "m",
            "taker_order_id": "t",
            "side": row["side"],
            "size": row["size"],
            "price": row["price"],
            "product_id": "BTC-USD",
            "sequence": 3 * trade_id,  # counts every order event: jumps between matches
            "time": row["time"],
        }
    )


def heartbeat(last_trade_id: int) -> str:
    return json.dumps(
        {"type": "heartbeat", "sequence": 1, "last_trade_id": last_trade_id,
         "product_id": "BTC-USD", "time": "2016-05-12T15:00:00.000000Z"}
    )  # fmt: skip


def serve_trades(server: HTTPServer, newest: int = LAST) -> list[dict[str, str]]:
    """Coinbase's trades endpoint over the recorded rows the venue had made up to `newest`."""
    calls: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        calls.append(dict(request.args))
        below = min(int(request.args.get("after", newest + 1)), newest + 1)
        ids = range(below - 1, FIRST - 1, -1)[: int(request.args.get("limit", 100))]
        return Response(json.dumps([ROWS[i] for i in ids]), content_type="application/json")

    server.expect_request("/products/BTC-USD/trades").respond_with_handler(handler)
    return calls


def settings(venue: LoopbackVenue, server: HTTPServer, tmp_path: Path, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "crypto_ids": ["bitcoin"],
        "stock_symbols": [],
        "crypto_source": "coinbase",
        "coinbase_ws_url": venue.url,
        "coinbase_rest_url": server.url_for(""),
        "stream_backoff_max": 0.5,
        "allowed_lateness_minutes": 0,
        "request_timeout": 2.0,
        **more,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def collect(source: Any, until: Callable[[list[Any]], bool]) -> list[Any]:
    stop = threading.Event()
    records: list[Any] = []

    def run() -> None:
        for batch in source.batches(stop):
            records.extend(batch)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        wait_until(lambda: until(records), what="the stream's records")
    finally:
        stop.set()
        worker.join(10)
    return records


def trades_of(records: list[Any]) -> list[dict[str, Any]]:
    return [r for r in records if not isinstance(r, UnreadableRecord)]


def test_gaps_duplicates_out_of_order_errors_and_a_reconnect(tmp_path, httpserver):
    calls = serve_trades(httpserver, newest=FIRST + 16)
    first: list[Step] = [
        ACK,
        heartbeat(FIRST - 1),  # before any trade: nothing to compare with
        *(match(i) for i in range(FIRST, FIRST + 5)),  # 15..19
        match(FIRST + 2),  # the venue repeats a trade
        match(FIRST + 7),  # 20 and 21 missing: backfilled from REST
        match(FIRST + 6),  # 21 arrives late, after its backfill: a duplicate
        match(FIRST + 8),
        heartbeat(FIRST + 11),  # the venue made 24..26 but their matches never came
        REFUSED,
        "garbage{",
        DROP,
    ]
    second: list[Step] = [ACK, match(FIRST + 15), match(FIRST + 16), match(FIRST + 1000)]
    with LoopbackVenue([first, second]) as venue:
        source = stream_source(settings(venue, httpserver, tmp_path), "coinbase")
        records = collect(
            source,
            lambda rs: any(isinstance(r, UnreadableRecord) and "ids" in r.reason for r in rs),
        )
        assert len(venue.subscriptions) == 2  # it resubscribed after the drop
        assert json.loads(venue.subscriptions[1][0])["channels"] == ["matches", "heartbeat"]

    trades = trades_of(records)
    # 15..31 (the venue's trades up to its newest, 31) exactly once, in id order
    assert [t["trade_id"] for t in trades] == [*range(FIRST, FIRST + 17), FIRST + 1000]
    assert {t["symbol"] for t in trades} == {"bitcoin"} and {t["source"] for t in trades} == {
        "coinbase"
    }
    assert trades[0]["volume"] == float(ROWS[FIRST]["size"])
    assert trades[0]["market"] == "BTC-USD"
    counts = source.health.figures
    assert counts["duplicates"] == 4  # the repeat, late 21, and live 30 and 31 after backfill
    assert counts["backfilled"] == 2 + 3 + 5  # 20-21, 24-26, 27-31 after the reconnect
    assert counts["reconnects"] == 1
    letters = [r for r in records if isinstance(r, UnreadableRecord)]
    reasons = [letter.reason for letter in letters]
    assert any("BTC-XYZ is not valid" in r for r in reasons)
    assert any(r.startswith("unreadable coinbase message") for r in reasons)
    # the jump to 1015: the venue's REST has nothing between 31 and 1015
    assert any("983 trades of BTC-USD missing" in r for r in reasons), reasons
    assert source.health.state == "degraded"  # the refused subscription shows
    status = read_status(source.status_file)  # what `tickwatch check` reads
    assert status is not None and (status["backfilled"], status["reconnects"]) == (10, 1)
    assert {"after": str(FIRST + 7), "limit": "100"} in calls


# -- the runtime, with and without a disconnect ---------------------------------------------


def oracle_windows() -> list[tuple[Any, ...]]:
    """5-minute windows straight from the recorded rows (first/last by time, then id)."""
    groups: dict[int, list[tuple[datetime, int, float, float]]] = {}
    for trade_id, row in ROWS.items():
        moment = datetime.fromisoformat(row["time"])
        start = math.floor(moment.timestamp() / 300) * 300
        groups.setdefault(start, []).append(
            (moment, trade_id, float(row["price"]), float(row["size"]))
        )
    windows = []
    for start, trades in sorted(groups.items()):
        trades.sort()
        prices = [t[2] for t in trades]
        windows.append(
            (
                datetime.fromtimestamp(start, UTC),
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                round(sum(t[3] for t in trades), 6),
                len(trades),
            )
        )
    return windows


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` from the SQLite store a run left in `data_dir`."""
    engine = sa.create_engine(f"sqlite:///{data_dir / 'tickwatch.db'}")
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(sa.text(sql)).all()]
    engine.dispose()
    return rows


def stored_windows(data_dir: Path) -> list[tuple[Any, ...]]:
    rows = query(
        data_dir,
        "SELECT window_start, open, high, low, close, volume, tick_count "
        "FROM clean_market_data WHERE symbol = 'bitcoin' ORDER BY window_start",
    )
    return [
        (datetime.fromisoformat(str(r[0])).replace(tzinfo=UTC), *r[1:5], round(r[5], 6), r[6])
        for r in rows
    ]


def run_stream(
    sessions: list[list[Step]], tmp_path: Path, server: HTTPServer
) -> tuple[Runtime, dict[str, Any]]:
    """Run the Runtime on the venue until every trade is in; also its /health body."""
    from fastapi.testclient import TestClient

    from tickwatch.web import create_app

    with LoopbackVenue(sessions) as venue:
        chosen = settings(venue, server, tmp_path)
        runtime = Runtime(chosen, [stream_source(chosen, "coinbase")])
        runtime.start()
        try:
            wait_until(lambda: runtime.counters.accepted == len(ROWS), what="every trade")
            # windows are stored as they close, not at the end: all but the open one are in
            closed = len(oracle_windows()) - 1
            wait_until(lambda: len(stored_windows(tmp_path)) == closed, 5, "closed windows")
            app = create_app(chosen, simulated=False, pipeline=runtime)
            with TestClient(app, base_url="http://127.0.0.1") as client:
                health = client.get("/health").json()
        finally:
            runtime.shutdown()
    return runtime, health


@pytest.mark.timeout(120)
def test_a_disconnect_mid_window_loses_and_duplicates_nothing(tmp_path, httpserver):
    serve_trades(httpserver)
    whole = [ACK, *(match(i) for i in range(FIRST, LAST + 1))]
    run_stream([whole], tmp_path / "whole", httpserver)
    cut = FIRST + 800  # 15:3x, in the middle of a window
    broken = [
        [ACK, *(match(i) for i in range(FIRST, cut))],
        [ACK, *(match(i) for i in range(cut + 200, LAST + 1))],
    ]
    broken_first = [*broken[0], DROP]
    runtime, health = run_stream([broken_first, broken[1]], tmp_path / "broken", httpserver)

    expected = oracle_windows()
    assert len(expected) == 12  # 15:00 to 15:59, one hour of trades
    assert stored_windows(tmp_path / "whole") == expected
    assert stored_windows(tmp_path / "broken") == expected
    assert runtime.counters.duplicates == 0 and runtime.counters.rejected == 0
    [source] = health["sources"]  # what /health shows of the stream
    assert source["name"] == "coinbase" and source["figures"]["connected"] is True
    assert source["figures"]["reconnects"] == 1 and source["figures"]["backfilled"] > 0


def test_produce_for_a_duration_writes_replayable_ticks(tmp_path, httpserver):
    from typer.testing import CliRunner

    from tickwatch.cli import app

    serve_trades(httpserver)
    out = tmp_path / "btc.jsonl"
    with LoopbackVenue([[ACK, *(match(i) for i in sorted(ROWS))]]) as venue:
        env = {
            "CRYPTO_SOURCE": "coinbase",
            "CRYPTO_IDS": "bitcoin",
            "COINBASE_WS_URL": venue.url,
            "COINBASE_REST_URL": httpserver.url_for(""),
            "DATA_DIR": str(tmp_path / "produced"),
        }
        args = ["produce", "crypto", "--duration", "4", "--out", str(out)]
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        once = CliRunner().invoke(app, ["produce", "crypto", "--once"], env=env)
        assert once.exit_code == 2 and "--duration" in once.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["trade_id"] for r in records] == sorted(ROWS)
    replayed = CliRunner().invoke(
        app, ["replay", str(out), "--data-dir", str(tmp_path / "replayed")], env={}
    )
    assert replayed.exit_code == 0, replayed.output
    assert stored_windows(tmp_path / "replayed") == oracle_windows()


def synthetic_match(trade_id: int, moment: datetime, price: float, size: float) -> str:
    stamp = moment.isoformat().replace("+00:00", "Z")
    return json.dumps(
        {"type": "match", "trade_id": trade_id, "side": "buy", "size": f"{size:.8f}",
         "price": f"{price:.2f}", "product_id": "BTC-USD", "sequence": trade_id, "time": stamp}
    )  # fmt: skip


def stored_anomalies(data_dir: Path) -> list[tuple[str, str]]:
    sql = "SELECT window_start, anomaly_type FROM market_anomalies ORDER BY 1, 2"
    return [(str(start), str(kind)) for start, kind in query(data_dir, sql)]


@pytest.mark.timeout(120)
def test_a_surge_is_an_anomaly_seconds_after_its_window_closes(tmp_path, httpserver):
    """25 calm windows (10 trades of about 1 BTC each), then one with 40 BTC a trade: the
    volume surge is stored once the next window's first trade closes that window, within
    seconds, while the stream runs (not at shutdown)."""
    serve_trades(httpserver)
    base = datetime(2024, 3, 4, tzinfo=UTC)
    steps: list[Step] = [ACK]
    trade_id = 1
    for window in range(26):
        for k in range(10):
            size = 40.0 if window == 25 else 1.0 + 0.05 * (window % 4) + 0.1 * (k % 3)
            moment = base + timedelta(seconds=window * 300 + k * 25)
            steps.append(synthetic_match(trade_id, moment, 100.0 + 0.1 * (k % 3), size))
            trade_id += 1
    steps += [Pause(1.5), synthetic_match(trade_id, base + timedelta(seconds=26 * 300), 100, 1)]
    surge = base + timedelta(seconds=25 * 300)  # 02:05
    with LoopbackVenue([steps]) as venue:
        chosen = settings(venue, httpserver, tmp_path)
        runtime = Runtime(chosen, [stream_source(chosen, "coinbase")])
        runtime.start()
        try:
            wait_until(lambda: runtime.counters.accepted == 260, what="the surge window's trades")
            assert not stored_anomalies(tmp_path)  # its window is still open
            wait_until(lambda: venue.sent == len(steps) - 2, what="the closing trade")
            closed_at = time.monotonic()
            wait_until(lambda: stored_anomalies(tmp_path), 5, "the anomaly")
            assert time.monotonic() - closed_at < 5
        finally:
            runtime.shutdown()
    found = stored_anomalies(tmp_path)
    # the surge window, and only it: its volume, 400 BTC against about 12
    assert [(datetime.fromisoformat(start), kind) for start, kind in found] == [
        (surge, "volume_surge")
    ]


def test_an_unfillable_gap_is_a_dead_letter_in_the_store(tmp_path, httpserver):
    serve_trades(httpserver, newest=FIRST)  # the venue's REST has nothing after the first
    with LoopbackVenue([[ACK, match(FIRST), match(FIRST + 1000), "not json"]]) as venue:
        chosen = settings(venue, httpserver, tmp_path)
        runtime = Runtime(chosen, [stream_source(chosen, "coinbase")])
        runtime.start()
        try:
            wait_until(lambda: runtime.counters.rejected == 2, what="two dead letters")
        finally:
            runtime.shutdown()
    rows = query(tmp_path, "SELECT kind, reason, source, symbol FROM dead_letters ORDER BY reason")
    gap, garbage = rows
    missing = f"gap not backfilled: 999 trades of BTC-USD missing (ids {FIRST}..{FIRST + 1000})"
    assert gap == ("invalid", missing, "coinbase", "bitcoin")
    assert garbage[0] == "invalid" and garbage[2:] == ("coinbase", None)
    assert garbage[1].startswith("unreadable coinbase message: JSONDecodeError")
    assert runtime.counters.accepted == 2


@pytest.mark.timeout(120)
def test_tickwatch_run_on_the_loopback_venue_stores_the_oracle_windows(tmp_path, httpserver):
    """The command a user runs: CRYPTO_SOURCE=coinbase, no stocks, the venue on loopback."""
    from typer.testing import CliRunner

    from tickwatch.cli import app

    serve_trades(httpserver)
    with LoopbackVenue([[ACK, *(match(i) for i in sorted(ROWS))]]) as venue:
        env = {
            "CRYPTO_SOURCE": "coinbase",
            "CRYPTO_IDS": "bitcoin",
            "STOCK_SYMBOLS": "",
            "COINBASE_WS_URL": venue.url,
            "COINBASE_REST_URL": httpserver.url_for(""),
            "DATA_DIR": str(tmp_path),
            "ALLOWED_LATENESS_MINUTES": "0",
        }
        args = ["run", "--source", "live", "--duration", "6", "--no-web"]
        result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "coinbase" in result.output
    assert stored_windows(tmp_path) == oracle_windows()
