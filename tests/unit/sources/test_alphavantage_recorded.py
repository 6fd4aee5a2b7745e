"""Alpha Vantage on every real recorded response in shared/datasets/recorded (see its
SOURCES.md), parsed directly and served through the real client from a loopback server.

Expected bars were read by hand from the files (the line is named next to each); their UTC
times were converted with GNU `date` (`TZ=America/New_York`), independently of the code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.unit.sources.test_alphavantage import FakeClock, FakeStop, settings
from tickwatch.errors import SourceError
from tickwatch.sources.alphavantage import (
    AlphaVantageSource,
    label_shift,
    parse_intraday,
    parse_intraday_csv,
)

RECORDED = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "recorded"
MSFT_5MIN = "av_TIME_SERIES_INTRADAY_5min_MSFT_2019-03-14_2019-04-03_full.json"
MSFT_1MIN = "av_TIME_SERIES_INTRADAY_1min_MSFT_2017-12-18_compact.json"
IBM_2020 = "av_intraday_5min_IBM_2020-07-24_2020-07-27_compact.csv"
IBM_2024 = "av_intraday_5min_IBM_2024-03-15_compact.csv"
IBM_2025 = "av_intraday_5min_IBM_2025-07-25_compact.csv"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def bars(name: str, symbol: str) -> list[tuple[datetime | None, dict[str, Any]]]:
    text = (RECORDED / name).read_text()
    if name.endswith(".csv"):
        return parse_intraday_csv(text, symbol, NOW)
    return parse_intraday(json.loads(text), symbol, NOW)


def ohlcv(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record[k] for k in ("event_time", "open", "high", "low", "close", "volume"))


def test_every_recorded_alpha_vantage_file_is_covered() -> None:
    names = {p.name for p in RECORDED.glob("av_*")}
    assert names == {MSFT_5MIN, MSFT_1MIN, IBM_2020, IBM_2024, IBM_2025}


@pytest.mark.parametrize(
    ("name", "symbol", "count", "first", "last"),
    [
        # end-labelled, regular hours: first key 09:35 (line 8194), last 16:00 (line 11);
        # bars start 5 minutes before their label, EDT (UTC-4)
        (
            MSFT_5MIN,
            "MSFT",
            1170,
            ("2019-03-14T13:30:00+00:00", 114.46, 114.95, 114.33, 114.715, 1691888.0),
            ("2019-04-03T19:55:00+00:00", 119.73, 120.0, 119.73, 119.97, 1216208.0),
        ),
        # 1-min, 13:17 (line 704) to 14:56 (line 11): no session edge, labels read as starts;
        # December is EST (UTC-5)
        (
            MSFT_1MIN,
            "MSFT",
            100,
            ("2017-12-18T18:17:00+00:00", 86.8101, 86.82, 86.79, 86.8, 31172.0),
            ("2017-12-18T19:56:00+00:00", 86.49, 86.5, 86.475, 86.5, 10494.0),
        ),
        # end-labelled, extended hours: oldest row 2020-07-24 19:55 (line 101; line 100 is the
        # day's 20:00 key), newest 07-27 18:15 (line 2)
        (
            IBM_2020,
            "IBM",
            100,
            ("2020-07-24T23:50:00+00:00", 125.55, 125.55, 125.55, 125.55, 103.0),
            ("2020-07-27T22:10:00+00:00", 126.5, 126.5, 126.5, 126.5, 500.0),
        ),
        # start-labelled: 10:45 (line 101) to 19:55 (line 2)
        (
            IBM_2024,
            "IBM",
            100,
            ("2024-03-15T14:45:00+00:00", 192.52, 192.95, 192.51, 192.86, 20512.0),
            ("2024-03-15T23:55:00+00:00", 191.07, 191.25, 191.07, 191.25, 15.0),
        ),
        # start-labelled: 11:40 (line 101) to 19:55 (line 2)
        (
            IBM_2025,
            "IBM",
            100,
            ("2025-07-25T15:40:00+00:00", 257.47, 257.48, 256.7001, 257.03, 81195.0),
            ("2025-07-25T23:55:00+00:00", 259.43, 259.55, 259.4, 259.55, 494.0),
        ),
    ],
)
def test_recorded_bars_first_and_last(
    name: str, symbol: str, count: int, first: tuple[Any, ...], last: tuple[Any, ...]
) -> None:
    parsed = bars(name, symbol)
    assert len(parsed) == count
    assert all(start is not None for start, _ in parsed)
    assert ohlcv(parsed[0][1]) == first and ohlcv(parsed[-1][1]) == last
    starts = [start for start, _ in parsed]
    assert starts == sorted(set(starts))  # oldest first, each bar once
    assert all(r["price"] == r["close"] and r["symbol"] == symbol for _, r in parsed)


def test_labelling_is_detected_per_file() -> None:
    five = timedelta(minutes=5)

    def labels(name: str) -> list[datetime]:
        text = (RECORDED / name).read_text()
        if name.endswith(".csv"):
            keys = [line.split(",")[0] for line in text.splitlines()[1:]]
        else:
            keys = list(next(v for k, v in json.loads(text).items() if k.startswith("Time")))
        return [datetime.strptime(k, "%Y-%m-%d %H:%M:%S") for k in keys]

    assert label_shift(labels(MSFT_5MIN), five) == five  # 16:00 labels, nothing before 09:35
    assert label_shift(labels(IBM_2020), five) == five  # 20:00 label, extended hours
    assert label_shift(labels(IBM_2024), five) == timedelta(0)
    assert label_shift(labels(IBM_2025), five) == timedelta(0)
    # a start-labelled extended day ending on a quiet 16:00 bar is not end-labelled
    quiet = [datetime(2024, 3, 14, 19, 55), datetime(2024, 3, 15, 9, 30)]
    quiet.append(datetime(2024, 3, 15, 16, 0))
    assert label_shift(quiet, five) == timedelta(0)
    # regular hours starting at the 09:30 open are start-labelled even with a 16:00 key
    assert label_shift([datetime(2024, 3, 15, 9, 30), datetime(2024, 3, 15, 16, 0)], five) == (
        timedelta(0)
    )


def test_recorded_events_land_in_their_windows() -> None:
    msft = {r["event_time"]: r for _, r in bars(MSFT_5MIN, "MSFT")}
    # quad witching, 2019-03-15: key 09:35 (line 7648) is the 09:30 EDT opening bar
    assert msft["2019-03-15T13:30:00+00:00"]["volume"] == 10282738.0
    ibm = {r["event_time"]: r for _, r in bars(IBM_2025, "IBM")}
    # the bad print: row 16:45 (line 40), high = close = 290.23; 16:50 back to 259.60 (line 39)
    assert ibm["2025-07-25T20:45:00+00:00"]["close"] == 290.23
    assert ibm["2025-07-25T20:50:00+00:00"]["close"] == 259.6


def test_csv_with_a_byte_order_mark_and_crlf_reads_the_same() -> None:
    text = (RECORDED / IBM_2025).read_text()
    marked = "\ufeff" + text.replace("\n", "\r\n")
    assert parse_intraday_csv(marked, "IBM", NOW) == bars(IBM_2025, "IBM")


def test_csv_error_bodies_are_json_and_never_data() -> None:
    with pytest.raises(SourceError, match="Invalid API call"):
        parse_intraday_csv('{"Error Message": "Invalid API call."}', "IBM", NOW)
    with pytest.raises(SourceError, match="columns"):
        parse_intraday_csv("time,price\n2024-03-15 10:00:00,1\n", "IBM", NOW)
    parsed = parse_intraday_csv(
        "timestamp,open,high,low,close,volume\nyesterday,1,1,1,1,1\n", "IBM", NOW
    )
    assert parsed == [(None, {**parsed[0][1], "event_time": "yesterday"})]


def test_recorded_full_series_through_the_client(httpserver: HTTPServer) -> None:
    body = (RECORDED / MSFT_5MIN).read_bytes()
    httpserver.expect_request("/query").respond_with_data(body, content_type="application/json")
    clock = FakeClock(datetime(2019, 4, 4, 12, 0, tzinfo=UTC))
    source = AlphaVantageSource(settings(httpserver, stock_symbols=["MSFT"]), clock=clock, rounds=2)
    batches = list(source.batches(FakeStop(clock)))
    # the second poll returns the same 1,170 bars: none is emitted again
    assert [len(b) for b in batches] == [1170]
    assert batches[0][0]["event_time"] == "2019-03-14T13:30:00+00:00"
    assert batches[0][-1]["event_time"] == "2019-04-03T19:55:00+00:00"
    # this source's two polls (the shared loopback server may also log a request that a source
    # of an earlier test sent while it stopped)
    polls = [r for r, _ in httpserver.log if r.args.get("symbol") == "MSFT"]
    assert len(polls) == 2 and source.health.state == "ok"
