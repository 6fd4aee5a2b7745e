"""Bad input at the API: schemathesis fuzzes every GET query parameter of the OpenAPI document.

The app runs over a small SQLite store filled by replaying simulated ticks through the real
Processor. Expected for every request: no 5xx, a 2xx or 4xx with a JSON body (the Prometheus
text of /metrics excepted), and the app still answers /health afterwards. Examples are bounded
(hypothesis `max_examples` per operation and mode) so the module runs in seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.ledger import Ledger
from tickwatch.config import load_settings
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.web import WebServer, create_app

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NOW = datetime(2024, 3, 6, tzinfo=UTC)
AREA = "bad input: API query parameters"
EXAMPLES = 25  # per operation and generation mode
SKIPPED = {"/api/stream"}  # server-sent events never end; covered by the web tests
TEXT_BODIES = {"/metrics"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}"
    store = SqlStore(url)
    sim = MarketSimulator(["AAPL", "MSFT"], ["bitcoin"], seed=3, anomaly_rate=0.05)
    data = [tick_to_record(t) for w in sim.windows(START, START + timedelta(hours=3)) for t in w]
    processor = Processor(load_settings(store_url=url), store, None, clock=lambda: NOW)
    processor.handle(data)
    processor.finish()
    store.close()
    yield create_app(load_settings(store_url=url), clock=lambda: NOW)


@pytest.fixture(scope="module")
def served(app: FastAPI) -> Iterator[str]:
    """The app under real uvicorn on loopback: its base URL."""
    server = WebServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.wait_started(10.0)
    yield server.url
    server.stop()
    thread.join(10)


def problem(path: str, status: int, body: bytes) -> str | None:
    """What is wrong with one answer, or None."""
    if status == 503 and path.startswith("/health"):
        pass  # health reports 'down' as 503 by design (load balancers read the status)
    elif status >= 500:
        return f"{path}: HTTP {status}: {body[:200]!r}"
    if path not in TEXT_BODIES:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            return f"{path}: HTTP {status} without a JSON body: {body[:80]!r}"
    return None


def fuzz(app: FastAPI, url: str, mode: GenerationMode) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    found: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "GET" or operation.path in SKIPPED:
            continue

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            nonlocal count
            count += 1
            response = case.call(base_url=url, timeout=30)
            if (bad := problem(case.path, response.status_code, response.content)) is not None:
                found.append(bad)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # no parameters: nothing can be invalid
    return count, found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_never_a_server_error(
    ledger: Ledger, app: FastAPI, served: str, mode: GenerationMode
):
    count, found = fuzz(app, served, mode)
    still = httpx.get(f"{served}/health").status_code
    ledger.record(
        AREA,
        f"schemathesis {mode.value} cases, every GET operation",
        count,
        "0 5xx or non-JSON answers, /health 200",
        f"{len(found)} 5xx or non-JSON answers, /health {still}",
    )
    assert not found, "\n".join(found[:10])
    assert still == 200 and count >= EXAMPLES


HAND_PICKED: list[dict[str, str]] = [
    {"range": "99999999999999999999d"},  # beyond timedelta
    {"range": "1e400h"},
    {"range": "-5m"},
    {"range": "NaNh"},
    {"range": "٣d"},  # Arabic-Indic digit three
    {"start": "9999-12-31T23:59:59+14:00"},
    {"start": "0001-01-01T00:00:00-14:00", "end": "0001-01-01T00:00:00+00:00"},
    {"start": "2024-02-30T00:00:00Z"},
    {"start": "2024-03-04T10:00:00"},  # no offset
    {"end": "not a date"},
    {"start": "2024-03-05T00:00:00Z", "end": "2024-03-04T00:00:00Z"},  # end before start
    {"symbol": "'; DROP TABLE market_anomalies; --"},
    {"symbol": "🚀\u0000\ud7ff"},
    {"symbol": "A" * 8_000},
    {"limit": "10" + "0" * 40},
    {"limit": "-1"},
    {"offset": "9223372036854775808"},
    {"offset": "1e3"},
    {"type": "price_spike; --"},
    {"severity": "HIGH"},
]
GET_PATHS = [
    "/api/anomalies",
    "/api/windows",
    "/api/prices/latest",
    "/api/summary",
    "/api/volatility",
    "/api/meta",
    "/health",
]


def test_hand_picked_extremes(ledger: Ledger, served: str):
    found: list[str] = []
    with httpx.Client(base_url=served, timeout=30) as client:
        for params in HAND_PICKED:
            for path in GET_PATHS:
                try:
                    response = client.get(path, params=params)
                except httpx.TransportError as exc:
                    found.append(f"{params}: {path}: {type(exc).__name__}: {exc}")
                    continue
                if (bad := problem(path, response.status_code, response.content)) is not None:
                    found.append(f"{params}: {bad}")
        still = client.get("/health").status_code
    cases = len(HAND_PICKED) * len(GET_PATHS)
    ledger.record(
        AREA,
        "huge values, unicode, bad dates, injection (hand-picked)",
        cases,
        "0 5xx or non-JSON answers, /health 200",
        f"{len(found)} 5xx or non-JSON answers, /health {still}",
    )
    assert not found, "\n".join(found[:10])
    assert still == 200
