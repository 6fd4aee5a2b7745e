"""CoinGecko against a real loopback HTTP server replaying bodies in the documented format.

Epoch times in the bodies were converted with GNU `date -u -d @SECONDS`, independently of the
code. The fake clock moves only when the source waits, so call times are exact.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tickwatch.config import Settings
from tickwatch.sources.coingecko import CoinGeckoSource, parse_market_chart

DATA = Path(__file__).parents[2] / "data" / "coingecko"
T0 = datetime(2024, 3, 8, 15, 20, tzinfo=UTC)
CHART = "/coins/{}/market_chart"
PRICE = "/simple/price"


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class FakeStop(threading.Event):
    """A stop event whose wait advances the fake clock; records the source state meanwhile."""

    def __init__(self, clock: FakeClock, source: CoinGeckoSource | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.source = source
        self.states: list[str] = []

    def wait(self, timeout: float | None = None) -> bool:
        if self.source is not None:
            self.states.append(self.source.health.state)
        self.clock.now += timedelta(seconds=timeout or 0)
        return self.is_set()


class Replay:
    def __init__(self, server: HTTPServer, clock: FakeClock, key: str | None) -> None:
        self.clock = clock
        self.key = key
        self.queues: dict[str, list[tuple[int, str, dict[str, str]]]] = {}
        self.calls: list[tuple[float, str]] = []
        self.slow_calls = 0
        for path in (CHART.format("bitcoin"), CHART.format("ethereum"), PRICE):
            server.expect_request(path).respond_with_handler(self.handle)

    def add(self, path: str, *responses: tuple[int, str, dict[str, str]] | str) -> None:
        for item in responses:
            entry = (200, item, {}) if isinstance(item, str) else item
            self.queues.setdefault(path, []).append(entry)

    def handle(self, request: Request) -> Response:
        assert request.headers.get("x-cg-demo-api-key") == self.key
        if request.path == PRICE:
            assert request.args["ids"] == "bitcoin,ethereum"
            assert request.args["include_last_updated_at"] == "true"
        else:
            assert request.args["days"] == "1" and request.args["vs_currency"] == "usd"
        self.calls.append(((self.clock.now - T0).total_seconds(), request.path))
        queue = self.queues[request.path]
        status, name, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        if self.slow_calls:
            self.slow_calls -= 1
            time.sleep(0.3)
        body = (DATA / name).read_bytes() if name else b""
        return Response(body, status=status, headers=headers, content_type="application/json")


def make_source(server: HTTPServer, clock: FakeClock, **kwargs: Any) -> CoinGeckoSource:
    values: dict[str, Any] = {
        "coingecko_base_url": server.url_for("/"),
        "crypto_ids": ["bitcoin", "ethereum"],
        "coingecko_calls_per_minute": 10,
        "crypto_poll_interval": 30,
        "request_timeout": 2.0,
        "coingecko_api_key": kwargs.pop("key", "cg-test"),
    }
    for name in list(kwargs):
        if name in Settings.model_fields:
            values[name] = kwargs.pop(name)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    return CoinGeckoSource(settings, clock=clock, **kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def replay(httpserver: HTTPServer, clock: FakeClock) -> Replay:
    r = Replay(httpserver, clock, "cg-test")
    r.add(CHART.format("bitcoin"), "market_chart_bitcoin.json")
    r.add(CHART.format("ethereum"), "market_chart_ethereum.json")
    return r


def tick(coin: str, at: str, price: float, ingest_offset: float) -> dict[str, Any]:
    return {
        "source": "coingecko",
        "asset_type": "crypto",
        "symbol": coin,
        "event_time": at,
        "ingest_time": (T0 + timedelta(seconds=ingest_offset)).isoformat(),
        "price": price,
        "volume": None,  # CoinGecko only knows rolling 24-hour volume: never interval volume
    }


def test_warm_start_then_prices_each_update_once(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add(PRICE, "simple_price.json", "simple_price_next.json")
    source = make_source(httpserver, clock, rounds=2)
    batches = list(source.batches(FakeStop(clock)))
    assert batches == [
        [
            tick("bitcoin", "2024-03-08T15:00:00+00:00", 68010.5, 0),
            tick("bitcoin", "2024-03-08T15:05:00+00:00", 68022.25, 0),
            tick("bitcoin", "2024-03-08T15:10:00+00:00", 67990.0, 0),
            tick("bitcoin", "2024-03-08T15:15:12.345000+00:00", 68001.75, 0),
        ],
        [
            tick("ethereum", "2024-03-08T15:00:00+00:00", 3901.5, 6),
            tick("ethereum", "2024-03-08T15:05:00+00:00", 3903.0, 6),
        ],
        [
            tick("bitcoin", "2024-03-08T15:17:00+00:00", 68050.12, 12),
            tick("ethereum", "2024-03-08T15:16:51+00:00", 3905.4, 12),
        ],
        # bitcoin's last_updated_at repeats: nothing new for it
        [tick("ethereum", "2024-03-08T15:17:55+00:00", 3907.9, 42)],
    ]
    # 10 calls a minute -> 6 s apart; live polls every CRYPTO_POLL_INTERVAL = 30 s.
    assert replay.calls == [
        (0, CHART.format("bitcoin")),
        (6, CHART.format("ethereum")),
        (12, PRICE),
        (42, PRICE),
    ]
    assert source.health.state == "ok" and source.health.figures["calls_made"] == 4


def test_without_a_key_no_key_header_is_sent(httpserver: HTTPServer, clock: FakeClock) -> None:
    replay = Replay(httpserver, clock, None)
    replay.add(PRICE, "simple_price.json")
    source = make_source(httpserver, clock, key=None, rounds=1, warm_start=False)
    assert [len(b) for b in source.batches(FakeStop(clock))] == [2]
    assert replay.calls == [(0, PRICE)]


def test_429_with_retry_after_waits_exactly_that_long(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add(PRICE, (429, "rate_limited.json", {"Retry-After": "5"}), "simple_price.json")
    source = make_source(httpserver, clock, rounds=1)
    assert [len(b) for b in source.batches(FakeStop(clock))] == [4, 2, 2]
    assert [at for at, _ in replay.calls] == [0, 6, 12, 17]


def test_429_without_retry_after_backs_off_then_pauses(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    limited = (429, "rate_limited.json", {})
    replay.add(PRICE, limited, limited, limited, "simple_price.json")
    source = make_source(httpserver, clock, rounds=1)
    stop = FakeStop(clock, source)
    assert [len(b) for b in source.batches(stop)] == [4, 2, 2]
    times = [at for at, path in replay.calls if path == PRICE]
    assert times[0] == 12
    assert 1 <= times[1] - times[0] <= 2 and 2 <= times[2] - times[1] <= 3  # backoff + jitter
    assert times[3] == pytest.approx(times[2] + 60)  # attempts spent: paused a minute
    assert "paused" in stop.states
    assert source.health.state == "ok"


def test_server_errors_and_malformed_json_degrade_then_recover(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add(PRICE, "malformed.json", "simple_price.json")
    source = make_source(httpserver, clock, rounds=1)
    stop = FakeStop(clock, source)
    assert [len(b) for b in source.batches(stop)] == [4, 2, 2]
    assert [at for at, _ in replay.calls] == [0, 6, 12, 42]  # no retry; next poll as usual
    assert "degraded" in stop.states


def test_500_is_retried(httpserver: HTTPServer, replay: Replay, clock: FakeClock) -> None:
    replay.add(PRICE, (500, "", {}), "simple_price.json")
    source = make_source(httpserver, clock, rounds=1)
    assert [len(b) for b in source.batches(FakeStop(clock))] == [4, 2, 2]
    assert len(replay.calls) == 4


def test_unknown_coin_is_reported_not_invented(
    httpserver: HTTPServer, replay: Replay, clock: FakeClock
) -> None:
    replay.add(PRICE, "simple_price_missing.json")
    source = make_source(httpserver, clock, rounds=1, warm_start=False)
    batches = list(source.batches(FakeStop(clock)))
    assert batches == [[tick("bitcoin", "2024-03-08T15:17:00+00:00", 68050.12, 0)]]
    assert source.health.figures["unpriced"] == ["ethereum"]


def test_timeouts_are_retried_then_degrade_until_the_next_poll(clock: FakeClock) -> None:
    server = HTTPServer(threaded=True)  # a slow answer must not hold up the retries
    server.start()
    try:
        replay = Replay(server, clock, "cg-test")
        replay.add(PRICE, "simple_price.json")
        replay.slow_calls = 3  # the first three requests outlast the 0.05 s timeout
        source = make_source(server, clock, rounds=1, warm_start=False, request_timeout=0.05)
        stop = FakeStop(clock, source)
        assert [len(b) for b in source.batches(stop)] == [2]
    finally:
        server.clear()
        server.stop()
    times = [at for at, _ in replay.calls]
    assert len(times) == 4
    assert 1 <= times[1] - times[0] <= 2 and 2 <= times[2] - times[1] <= 3  # backoff + jitter
    assert times[3] == pytest.approx(times[2] + 30)  # gave up; next poll on schedule
    assert "degraded" in stop.states


def test_unreadable_points_travel_on_as_dead_letters() -> None:
    body = {"prices": [[1709910000000, 68010.5], ["soon", 1.0], [1709910300000, None]]}
    points = parse_market_chart(body, "bitcoin", T0)
    assert [(m is not None, r["event_time"], r["price"]) for m, r in points] == [
        (True, "2024-03-08T15:00:00+00:00", 68010.5),
        (True, "2024-03-08T15:05:00+00:00", None),  # normalize rejects: missing price
        (False, "soon", 1.0),  # normalize rejects: not ISO 8601
    ]
