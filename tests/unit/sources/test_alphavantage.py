"""Alpha Vantage against a real loopback HTTP server replaying bodies in the documented format.

Time is a fake clock that only moves when the source waits (`stop.wait`), so every call time
below is exact and no test sleeps. Expected UTC times were converted by GNU `date` with the
system tz database, independently of the code's zoneinfo.
"""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tickwatch.config import Settings
from tickwatch.errors import SourceError
from tickwatch.sources.alphavantage import AlphaVantageSource, parse_intraday

DATA = Path(__file__).parents[2] / "data" / "alphavantage"
T0 = datetime(2024, 3, 11, 14, 0, tzinfo=UTC)  # Monday; midnight UTC is 36,000 s away


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class FakeStop(threading.Event):
    """A stop event whose wait advances the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += timedelta(seconds=timeout or 0)
        return self.is_set()


class Replay:
    """Serves queued (status, body file, headers) per symbol; logs (clock time, symbol)."""

    def __init__(self, server: HTTPServer, clock: FakeClock) -> None:
        self.clock = clock
        self.queues: dict[str, list[tuple[int, str, dict[str, str]]]] = {}
        self.calls: list[tuple[datetime, str]] = []
        self.delay = 0.0
        server.expect_request("/query").respond_with_handler(self.handle)

    def add(self, symbol: str, *responses: tuple[int, str, dict[str, str]] | str) -> None:
        for item in responses:
            entry = (200, item, {}) if isinstance(item, str) else item
            self.queues.setdefault(symbol, []).append(entry)

    def handle(self, request: Request) -> Response:
        symbol = request.args["symbol"]
        assert request.args["function"] == "TIME_SERIES_INTRADAY"
        assert request.args["interval"] == "5min"
        assert request.args["apikey"] == "testkey"
        self.calls.append((self.clock.now, symbol))
        queue = self.queues[symbol]
        status, name, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        if self.delay:
            time.sleep(self.delay)
        body = (DATA / name).read_bytes() if name else b""
        return Response(body, status=status, headers=headers, content_type="application/json")

    def offsets(self) -> list[float]:
        return [(at - T0).total_seconds() for at, _ in self.calls]


def settings(server: HTTPServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "alpha_vantage_base_url": server.url_for("/query"),
        "alpha_vantage_api_key": "testkey",
        "stock_symbols": ["IBM"],
        "stock_poll_interval": 60,
        "request_timeout": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def replay(httpserver: HTTPServer, clock: FakeClock) -> Replay:
    return Replay(httpserver, clock)


def run(source: AlphaVantageSource, clock: FakeClock) -> list[list[Any]]:
    return list(source.batches(FakeStop(clock)))


def bar(
    at: str, o: float, h: float, lo: float, c: float, v: float, now: datetime = T0
) -> dict[str, Any]:
    return {
        "source": "alphavantage",
        "asset_type": "stock",
        "symbol": "IBM",
        "event_time": at,
        "ingest_time": now.isoformat(),
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "volume": v,
        "price": c,
    }


def test_bars_are_converted_to_utc_and_each_is_emitted_once(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", "intraday_ibm.json", "intraday_ibm_next.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=2)
    batches = run(source, clock)
    # 15:40-15:55 EST (UTC-5) are 20:40-20:55 UTC; the second poll repeats 15:50 and 15:55.
    assert batches == [
        [
            bar("2024-03-08T20:40:00+00:00", 195.6, 195.65, 195.3, 195.5, 87410),
            bar("2024-03-08T20:45:00+00:00", 195.5, 195.75, 195.41, 195.7, 98211),
            bar("2024-03-08T20:50:00+00:00", 195.7, 195.95, 195.6, 195.9, 120033),
            bar("2024-03-08T20:55:00+00:00", 195.9, 196.2, 195.8, 196.15, 310245),
        ],
        [
            bar("2024-03-08T21:00:00+00:00", 196.15, 196.3, 196.0, 196.0, 402117, clock.now),
            bar("2024-03-08T21:05:00+00:00", 196.0, 196.05, 195.9, 195.95, 5120, clock.now),
        ],
    ]
    # Second call: 24 calls left after the first, spread to midnight: 36,000 s / 25 = 1,440 s.
    assert replay.offsets() == [0.0, 1440.0]
    assert source.health.state == "ok"
    assert source.health.figures["remaining_calls_today"] == 23


def test_dst_boundaries_use_the_offset_of_each_date() -> None:
    bars = parse_intraday(
        __import__("orjson").loads((DATA / "intraday_dst.json").read_bytes()), "IBM", T0
    )
    assert [(start.isoformat() if start else None, r["volume"]) for start, r in bars] == [
        ("2024-03-09T00:55:00+00:00", 0.0),  # Friday, EST (UTC-5)
        ("2024-03-11T08:00:00+00:00", 1.0),  # Monday after the spring change, EDT (UTC-4)
        ("2024-11-01T23:55:00+00:00", 2.0),  # EDT
        ("2024-11-03T05:30:00+00:00", 3.0),  # the repeated hour: its first occurrence (EDT)
        ("2024-11-04T09:00:00+00:00", 4.0),  # EST again
    ]


def test_a_bar_still_forming_waits_for_the_next_poll(
    httpserver: HTTPServer, replay: Replay
) -> None:
    clock = FakeClock(datetime(2024, 3, 8, 20, 58, tzinfo=UTC))  # 15:58 EST: 15:55 bar open
    replay.add("IBM", "intraday_ibm.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=2)
    batches = run(source, clock)
    assert [[r["event_time"] for r in b] for b in batches] == [
        ["2024-03-08T20:40:00+00:00", "2024-03-08T20:45:00+00:00", "2024-03-08T20:50:00+00:00"],
        ["2024-03-08T20:55:00+00:00"],
    ]


def test_warm_start_is_paced_by_the_minute_limit_then_spread_over_the_day(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    symbols = ["IBM", "AAPL", "MSFT", "GOOGL", "AMZN"]
    for symbol in symbols:
        replay.add(symbol, "empty_series.json")
    source = AlphaVantageSource(settings(httpserver, stock_symbols=symbols), clock=clock, rounds=2)
    assert run(source, clock) == []
    # Warm start: 5 a minute -> 12 s apart. Then 20 calls left after the call at 48 s:
    # (36,000 - 48) / 21 = 1,712 s apart, which stays 1,712 s as the day is used evenly.
    assert replay.offsets() == [0, 12, 24, 36, 48, 1760, 3472, 5184, 6896, 8608]
    assert [symbol for _, symbol in replay.calls] == symbols * 2
    assert source.health.figures["remaining_calls_today"] == 15


def test_spent_budget_pauses_until_midnight(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", "empty_series.json")
    source = AlphaVantageSource(
        settings(httpserver, alpha_vantage_calls_per_day=3), clock=clock, rounds=4
    )
    states: list[str] = []
    original = source._refresh

    def spy(now: datetime, at: datetime) -> None:
        original(now, at)
        states.append(source.health.state)

    source._refresh = spy  # type: ignore[method-assign]
    run(source, clock)
    # 3 a day: 36,000 s / 3 = 12,000 s apart, then nothing until midnight resets the day.
    assert replay.offsets() == [0, 12000, 24000, 36000]
    assert states[-2:] == ["paused", "ok"]  # paused while waiting for midnight, then served


@pytest.mark.parametrize(
    ("body", "resume"),
    [("note_minute.json", 60.0), ("information_burst.json", 60.0)],
)
def test_per_minute_rate_limit_body_pauses_a_minute(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock, body: str, resume: float
) -> None:
    replay.add("IBM", body, "intraday_ibm.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=2)
    states: list[str] = []
    batches = _watch(source, clock, states)
    assert replay.offsets() == [0.0, resume]
    assert states == ["paused"]
    assert len(batches) == 1 and len(batches[0]) == 4  # the rate-limit body was not data
    assert source.health.state == "ok"


def _watch(source: AlphaVantageSource, clock: FakeClock, states: list[str]) -> list[Any]:
    return list(source.batches(FakeStopRecording(clock, source, states)))


class FakeStopRecording(FakeStop):
    """Records the source's health state whenever it waits for longer than a second."""

    def __init__(self, clock: FakeClock, source: AlphaVantageSource, states: list[str]) -> None:
        super().__init__(clock)
        self.source = source
        self.states = states

    def wait(self, timeout: float | None = None) -> bool:
        if self.source.health.state == "paused":
            self.states.append("paused")
        return super().wait(timeout)


def test_daily_limit_body_ends_the_day(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", "information_daily.json", "empty_series.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=2)
    assert run(source, clock) == []
    assert replay.offsets() == [0.0, 36000.0]  # next call at midnight UTC, not before
    assert source.health.figures["remaining_calls_today"] == 24  # a new day, one call used


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("error_message.json", "Invalid API call"),
        ("information_premium.json", "premium endpoint"),
        ("malformed.json", "malformed JSON"),
    ],
)
def test_error_bodies_mark_the_symbol_failing_and_others_continue(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock, body: str, words: str
) -> None:
    replay.add("IBM", body)
    replay.add("MSFT", "intraday_ibm.json")
    source = AlphaVantageSource(
        settings(httpserver, stock_symbols=["IBM", "MSFT"]), clock=clock, rounds=2
    )
    batches = run(source, clock)
    assert [len(b) for b in batches] == [4]  # MSFT's bars; IBM's body is never data
    assert source.health.state == "degraded"
    assert "IBM" in source.health.message and words in source.health.message
    assert len(replay.calls) == 4  # no retries for a body that cannot improve


def test_all_symbols_failing_is_down(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", "error_message.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=2)
    run(source, clock)
    assert source.health.state == "down"


def test_http_429_with_retry_after_is_retried_after_exactly_that_long(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", (429, "", {"Retry-After": "7"}), "intraday_ibm.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=1)
    assert [len(b) for b in run(source, clock)] == [4]
    assert replay.offsets() == [0.0, 7.0]
    assert source.health.figures["remaining_calls_today"] == 23  # both requests counted


@pytest.mark.parametrize(("status", "headers"), [(429, {}), (500, {})])
def test_429_without_retry_after_and_500_back_off_with_jitter(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock, status: int, headers: dict[str, str]
) -> None:
    replay.add("IBM", (status, "", headers), (status, "", headers), "intraday_ibm.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=1)
    assert [len(b) for b in run(source, clock)] == [4]
    first, second, third = replay.offsets()
    assert first == 0.0
    assert 1.0 <= second <= 2.0  # 1 s, plus up to 1 s of jitter
    assert 2.0 <= third - second <= 3.0  # 2 s, plus up to 1 s of jitter


def test_persistent_500_gives_up_after_three_attempts(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", (500, "", {}))
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=1)
    assert run(source, clock) == []
    assert len(replay.calls) == 3
    assert source.health.state == "down" and "HTTP 500" in source.health.message


def test_long_retry_after_pauses_the_source(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", (429, "", {"Retry-After": "600"}), "intraday_ibm.json")
    source = AlphaVantageSource(settings(httpserver), clock=clock, rounds=2)
    assert [len(b) for b in run(source, clock)] == [4]
    assert replay.offsets() == [0.0, 600.0]


def test_timeouts_are_retried_then_reported(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add("IBM", "intraday_ibm.json")
    replay.delay = 0.3
    source = AlphaVantageSource(settings(httpserver, request_timeout=0.05), clock=clock, rounds=1)
    assert run(source, clock) == []
    assert source.health.state == "down" and "timed out" in source.health.message
    assert source.budget.remaining_today(clock.now) == 22  # three attempts, all counted


def test_parse_rejects_a_body_without_the_series() -> None:
    with pytest.raises(SourceError, match="no 'Time Series \\(5min\\)'"):
        parse_intraday({"Meta Data": {}}, "IBM", T0)


def test_requests_that_never_connect_do_not_spend_the_daily_budget(clock: FakeClock) -> None:
    """A failed DNS lookup and a refused connection are the same httpx.ConnectError: nothing
    reached the API. Here a closed loopback port refuses (offline, unlike a DNS query): three
    attempts fail, all 25 calls of the day are still there. Answered requests count (above)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    values = {
        "alpha_vantage_base_url": f"http://127.0.0.1:{port}/query",
        "alpha_vantage_api_key": "testkey",
        "stock_symbols": ["IBM"],
        "request_timeout": 2.0,
    }
    source = AlphaVantageSource(Settings(_env_file=None, **values), clock=clock, rounds=1)  # type: ignore[call-arg]
    assert run(source, clock) == []
    assert source.health.state == "down" and "ConnectError" in source.health.message
    assert source.budget.remaining_today(clock.now) == 25


def test_the_demo_key_warns_at_start_which_symbols_will_fail(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    demo = settings(httpserver, alpha_vantage_api_key="demo", stock_symbols=["AAPL", "IBM"])
    with caplog.at_level("WARNING", logger="tickwatch.sources.alphavantage"):
        AlphaVantageSource(demo)
    assert (
        "ALPHA_VANTAGE_API_KEY is 'demo': it serves only IBM, so STOCK_SYMBOLS AAPL will fail"
        in caplog.text
    )
    assert "or set STOCK_SYMBOLS=IBM" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="tickwatch.sources.alphavantage"):
        AlphaVantageSource(settings(httpserver, alpha_vantage_api_key="demo"))  # IBM alone
    assert caplog.text == ""
