"""CoinGecko on every real recorded response in shared/datasets/recorded (see its SOURCES.md),
parsed directly and served through the real client from a loopback server, error bodies too.

Epoch times were converted with GNU `date -u -d @SECONDS`, independently of the code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.unit.sources.test_coingecko import FakeClock, FakeStop, make_source
from tickwatch.errors import SourceError
from tickwatch.sources.coingecko import parse_market_chart, parse_simple_price

RECORDED = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "recorded"
DAY_1442 = "coingecko_market_chart_bitcoin_usd_days1_rec2021-05-15T1442Z.json"
DAY_0821 = "coingecko_market_chart_bitcoin_usd_days1_rec2021-05-16T0821Z.json"
MONTH = "coingecko_market_chart_bitcoin_usd_days30_rec2021-05-15T1442Z.json"
OHLC = "coingecko_ohlc_bitcoin_usd_days7_rec2021-05-15T1534Z.json"
PRICE = "coingecko_simple_price_bitcoin_usd_rec2021-05-15T1410Z.json"
CASSETTE = "coingecko_vcr_cassette_market_chart_days1_with_422.yml"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def test_every_recorded_coingecko_file_is_covered() -> None:
    names = {p.name for p in RECORDED.glob("coingecko_*")}
    assert names == {DAY_1442, DAY_0821, MONTH, OHLC, PRICE, CASSETTE}


@pytest.mark.parametrize(
    ("name", "count", "first", "last"),
    [
        # 288 points whose final one repeats the one before it (same price, same second,
        # 1621089594955 and 1621089594000 ms): 287 observations. First 1621003519770.
        (
            DAY_1442,
            287,
            ("2021-05-14T14:45:19.770000+00:00", 50675.258073370765),
            ("2021-05-15T14:39:54+00:00", 49078.83040364477),
        ),
        # 289 points, the last one the current price at a whole second (1621153187000)
        (
            DAY_0821,
            289,
            ("2021-05-15T08:19:53.712000+00:00", 48460.07857593376),
            ("2021-05-16T08:19:47+00:00", 49004.693941891164),
        ),
        # 722 about hourly points, 1618499053863 to 1621088009000
        (
            MONTH,
            722,
            ("2021-04-15T15:04:13.863000+00:00", 62641.967327043465),
            ("2021-05-15T14:13:29+00:00", 49424.27756187507),
        ),
    ],
)
def test_recorded_market_charts(
    name: str, count: int, first: tuple[str, float], last: tuple[str, float]
) -> None:
    points = parse_market_chart(load(name), "bitcoin", NOW)
    assert len(points) == count
    records = [r for _, r in points]
    assert (records[0]["event_time"], records[0]["price"]) == first
    assert (records[-1]["event_time"], records[-1]["price"]) == last
    moments = [m for m, _ in points]
    assert all(m is not None for m in moments) and moments == sorted(set(moments))  # type: ignore[type-var]
    # total_volumes are rolling 24-hour USD sums (4.5e10 and up): never interval volume
    assert {r["volume"] for r in records} == {None}


def test_ohlc_candles_are_refused_not_misread() -> None:
    # /ohlc answers a bare list of [ms, o, h, l, c]: not a market chart, so an error
    body = load(OHLC)
    assert len(body) == 42 and body[0] == [1620504000000, 57945.79, 59122.18, 57945.79, 59122.18]
    with pytest.raises(SourceError, match="body is a list"):
        parse_market_chart(body, "bitcoin", NOW)


def test_recorded_simple_price_without_update_time_is_a_dead_letter() -> None:
    # {"bitcoin":{"usd":49253}}: asked without include_last_updated_at, so no event time
    found, missing = parse_simple_price(load(PRICE), ["bitcoin", "dogecoin"], NOW)
    assert missing == ["dogecoin"]
    [(moment, record)] = found
    assert moment is None and record["event_time"] is None and record["price"] == 49253


def test_24h_volume_never_becomes_interval_volume() -> None:
    # the documented shape of the live call; usd_24h_vol is a rolling sum
    body = {"bitcoin": {"usd": 49253, "usd_24h_vol": 6.1e10, "last_updated_at": 1621087800}}
    [(_, record)] = parse_simple_price(body, ["bitcoin"], NOW)[0]
    assert record["event_time"] == "2021-05-15T14:10:00+00:00"
    assert record["volume"] is None


class Cassette:
    """Serves the recorded interactions of a VCR cassette in order, status and body as is."""

    def __init__(self, server: HTTPServer, path: str, interactions: list[dict[str, Any]]):
        self.responses = [i["response"] for i in interactions]
        server.expect_request(path).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        response = self.responses.pop(0)
        return Response(
            response["body"]["string"],
            status=response["status"]["code"],
            content_type="application/json",
        )


def test_recorded_cassette_through_the_client(httpserver: HTTPServer) -> None:
    cassette = yaml.safe_load((RECORDED / CASSETTE).read_text())
    interactions = cassette["http_interactions"]
    assert [i["response"]["status"]["code"] for i in interactions] == [200, 200, 422]
    Cassette(httpserver, "/coins/bitcoin/market_chart", interactions)
    clock = FakeClock(datetime(2021, 5, 16, 8, 21, tzinfo=UTC))
    source = make_source(httpserver, clock, crypto_ids=["bitcoin"])
    stop = FakeStop(clock)
    first = source.warm("bitcoin", stop)
    assert len(first) == 287  # the repeated last point dropped
    second = source.warm("bitcoin", stop)
    # only points after the last one emitted (1621089594000 ms) are new
    later = [ms for ms, _ in load(DAY_0821)["prices"] if ms > 1621089594000]
    assert len(second) == len(later) > 0
    assert second[0]["event_time"] > first[-1]["event_time"]
    with pytest.raises(SourceError, match=r'HTTP 422: \{"error":"Missing parameter vs_currency"\}'):
        source.warm("bitcoin", stop)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        # recorded in the same repository's ohlc and price cassettes (SOURCES.md)
        (500, '{"status":500,"error":"Internal Server Error"}', "HTTP 500"),
        (422, '{"error":"Missing parameter ids"}', "Missing parameter ids"),
    ],
)
def test_recorded_error_bodies_through_the_client(
    httpserver: HTTPServer, status: int, body: str, message: str
) -> None:
    httpserver.expect_request("/simple/price").respond_with_data(
        body, status=status, content_type="application/json"
    )
    clock = FakeClock(datetime(2021, 5, 15, 14, 10, tzinfo=UTC))
    source = make_source(httpserver, clock, crypto_ids=["bitcoin"], warm_start=False)
    source.give_up_after = 1
    stop = FakeStop(clock, source)
    assert list(source.batches(stop)) == []
    assert source.health.state == "degraded" and message in source.health.message
    # a 500 is retried (three attempts); a 422 is final at once
    # (only this source's calls: the shared loopback server may log a stopping source's request)
    calls = [r for r, _ in httpserver.log if r.path == "/simple/price"]
    assert len(calls) == (3 if status == 500 else 1)
