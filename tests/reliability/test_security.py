"""Security: loopback by default, read-only API, secrets masked everywhere, parameterised SQL,
and a compose deployment that takes every password from `.env` and refuses admin/admin.

Secrets are set to distinctive values and served back by hostile loopback APIs that echo the
key in their error bodies, so a leak anywhere (log line, traceback, /health, error message)
would show the value verbatim.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.responses import PlainTextResponse, StreamingResponse
from pytest_httpserver import HTTPServer
from sqlalchemy import func, inspect, select
from werkzeug import Request, Response

from tests.ledger import Ledger
from tickwatch.config import Settings, load_settings
from tickwatch.errors import ConfigError
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.runtime import Runtime
from tickwatch.sources.alphavantage import AlphaVantageSource
from tickwatch.sources.coingecko import CoinGeckoSource
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.store.sql import clean_market_data, market_anomalies
from tickwatch.web import WebServer, create_app

ROOT = Path(__file__).resolve().parents[2]
AREA = "security"
SECRETS = {
    "ALPHA_VANTAGE_API_KEY": "av-key-Q7Z4X9W2",
    "COINGECKO_API_KEY": "cg-key-M3N8B5V1",
    "POSTGRES_PASSWORD": "pg-pass-K2J6H4G8",
    "GRAFANA_ADMIN_PASSWORD": "gf-pass-R5T1Y7U3",
    "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hooks/wh-token-P0O9I8U7",
}
STORE_SECRET = "store-pass-L1K2J3H4"
OK = ("ok", "starting")
START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NOW = datetime(2024, 3, 6, tzinfo=UTC)


def leaks(text: str) -> list[str]:
    values = [*SECRETS.values(), "wh-token-P0O9I8U7", STORE_SECRET]
    return [value for value in values if value in text]


def echo(request: Request) -> Response:
    """A hostile API: refuses every call and echoes the key it was sent."""
    sent = request.args.get("apikey") or request.headers.get("x-cg-demo-api-key") or ""
    return Response(f'{{"error": "key {sent} refused"}}', 403, content_type="application/json")


@pytest.fixture
def hostile(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request(re.compile(".*")).respond_with_handler(echo)
    return httpserver


def secret_env(server: HTTPServer, data_dir: Path) -> dict[str, str]:
    return {
        **SECRETS,
        "ALPHA_VANTAGE_BASE_URL": server.url_for("/query"),
        "CRYPTO_SOURCE": "coingecko",
        "COINGECKO_BASE_URL": server.url_for("/api/v3"),
        "STOCK_SYMBOLS": "AAPL",
        "CRYPTO_IDS": "bitcoin",
        "DATA_DIR": str(data_dir),
        "WEB_PORT": "0",
        "LOG_LEVEL": "DEBUG",
        "REQUEST_TIMEOUT": "2",
    }


@pytest.fixture
def filled_store(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'sec.db'}"
    store = SqlStore(url)
    sim = MarketSimulator(["AAPL"], [], seed=4, anomaly_rate=0.1)
    data = [tick_to_record(t) for w in sim.windows(START, START + timedelta(hours=3)) for t in w]
    processor = Processor(load_settings(store_url=url), store, None, clock=lambda: NOW)
    processor.handle(data)
    processor.finish()
    store.close()
    yield url


@pytest.fixture
def served(filled_store: str) -> Iterator[str]:
    server = WebServer(create_app(load_settings(store_url=filled_store)), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.wait_started(10.0)
    yield server.url
    server.stop()
    thread.join(10)


def test_web_binds_loopback_by_default(ledger: Ledger, monkeypatch, filled_store: str):
    monkeypatch.delenv("WEB_HOST", raising=False)
    settings = Settings(_env_file=None, store_url=filled_store, web_port=0)  # type: ignore[call-arg]
    server = WebServer(create_app(settings), settings.web_host, settings.web_port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.wait_started(10.0)
    bound = server.server.servers[0].sockets[0].getsockname()[0]
    server.stop()
    thread.join(10)
    ledger.record(AREA, "web app listen address by default", 1, "127.0.0.1", bound)
    assert bound == "127.0.0.1"


WORKFLOW_WRITES = [
    "/api/alerts/{alert_id}/actions",
    "/api/silences",
    "/api/silences/{silence_id}/lift",
]


def test_api_is_read_only(ledger: Ledger, served: str):
    """Without API_TOKEN nothing writes: the alert workflow's POSTs answer 403, every other
    write is refused with 405."""
    spec = httpx.get(f"{served}/openapi.json").json()
    methods = {method for item in spec["paths"].values() for method in item}
    posts = sorted(path for path, item in spec["paths"].items() if "post" in item)
    refused = total = 0
    with httpx.Client(base_url=served) as client:
        for path in [*spec["paths"], "/", "/overview", "/static/index.html"]:
            url = path.replace("{alert_id}", "a1").replace("{silence_id}", "s1")
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                total += 1
                expected = 403 if method == "POST" and path in WORKFLOW_WRITES else 405
                refused += client.request(method, url).status_code == expected
    ledger.record(
        AREA,
        "API read-only without API_TOKEN: workflow POSTs 403, other writes 405",
        total,
        f"methods ['get', 'post'], posts {WORKFLOW_WRITES}, {total} refused",
        f"methods {sorted(methods)}, posts {posts}, {refused} refused",
    )
    assert methods == {"get", "post"} and posts == sorted(WORKFLOW_WRITES) and refused == total


def test_sql_is_parameterised(ledger: Ledger, served: str, filled_store: str):
    hostile = ["'; DROP TABLE market_anomalies; --", "AAPL' OR '1'='1", 'AAPL" OR 1=1 --']
    store = SqlStore(filled_store)
    with store.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(market_anomalies)).scalar_one()
    found = []
    for symbol in hostile:
        body = httpx.get(f"{served}/api/anomalies", params={"symbol": symbol, "range": "all"})
        found.append(body.json()["total"])
    with store.engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(market_anomalies)).scalar_one()
    tables = set(inspect(store.engine).get_table_names())
    store.close()
    # no SQL text is built from strings in the package: every query is SQLAlchemy Core
    built = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "src" / "tickwatch").rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(\btext|\.execute|\.exec_driver_sql)\(\s*f?[\"'].*(\{|%s|\+)", line)
    ]
    ledger.record(
        AREA,
        "SQL injection through the symbol filter",
        len(hostile),
        f"0 matches each, {before} anomalies kept, no string-built SQL",
        f"{max(found)} matches each, {after} anomalies kept"
        + (", no string-built SQL" if not built else f", string-built SQL {built}"),
    )
    assert found == [0, 0, 0] and after == before > 0 and "market_anomalies" in tables
    assert built == []


def test_secrets_never_in_api_or_health(
    ledger: Ledger, hostile: HTTPServer, monkeypatch, tmp_path: Path
):
    for name, value in secret_env(hostile, tmp_path).items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    sources = [AlphaVantageSource(settings), CoinGeckoSource(settings)]
    runtime = Runtime(settings, sources, web=True)
    runtime.start()
    try:
        assert runtime.web is not None and runtime.web.wait_started(10.0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(s.health.state in OK for s in sources):
            time.sleep(0.1)  # until the hostile API has refused (and echoed) both keys
        states = [s.health.state for s in sources]
        failing = not any(state in OK for state in states)
        bodies = []
        with httpx.Client(base_url=runtime.web.url) as client:
            for path in [
                "/health",
                "/api/meta",
                "/metrics",
                "/api/anomalies",
                "/api/summary",
                "/openapi.json",
                "/health/checks",
            ]:
                bodies.append(client.get(path).text)
    finally:
        runtime.shutdown()
    found = leaks("\n".join(bodies))
    ledger.record(
        AREA,
        "secrets in API responses while a hostile API echoes the keys",
        len(bodies),
        "both sources failing, 0 secrets shown",
        f"{'both sources failing' if failing else f'sources {states}'}, {len(found)} secrets shown",
    )
    assert failing and found == [], found


def test_secrets_never_in_run_logs_or_errors(ledger: Ledger, hostile: HTTPServer, tmp_path: Path):
    env = {**os.environ, **secret_env(hostile, tmp_path), "NO_COLOR": "1", "COLUMNS": "200"}
    run = [sys.executable, "-m", "tickwatch.cli", "run", "--source", "live", "--duration", "6"]
    done = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    logged = done.stdout + done.stderr
    bad_store = f"postgresql+psycopg://market:{STORE_SECRET}@127.0.0.1:9/marketdb"
    failed = subprocess.run(
        [*run, "--store", bad_store],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    bad_config = subprocess.run(
        [*run[:4], "run"],
        env={**env, "Z_THRESHOLD": "9"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    errors = failed.stdout + failed.stderr + bad_config.stdout + bad_config.stderr
    try:
        load_settings(z_threshold=9, **{k.lower(): v for k, v in SECRETS.items()})
        raised = ""
    except ConfigError as exc:
        raised = str(exc)
    found = leaks(logged) + leaks(errors) + leaks(raised)
    refused = "403" in logged
    ledger.record(
        AREA,
        "secrets in `tickwatch run` logs (DEBUG) and error messages",
        4,
        "keys refused and logged, 0 secrets shown",
        f"keys {'refused and logged' if refused else 'never sent'}, {len(found)} secrets shown",
    )
    assert refused, logged[-2000:]
    assert failed.returncode != 0 and bad_config.returncode != 0
    assert found == [], found


GUARDED = {
    "grafana": ("GRAFANA_ADMIN_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD"),
    "airflow": ("AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"),
}


def guard_of(service: dict[str, object]) -> list[str]:
    """The service's start command as the container runs it ($$ is compose's escaped $)."""
    argv = service.get("entrypoint") or service["command"]
    assert isinstance(argv, list)
    return [str(part).replace("$$", "$") for part in argv]


def test_compose_passwords_from_env_and_no_default_admin(ledger: Ledger):
    text = (ROOT / "deploy" / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    variables = re.findall(r"\$\{([A-Z0-9_]+)(:?[-?])?[^}]*\}", text)
    defaulted = sorted({n for n, op in variables if "PASSWORD" in n and op != ":?"})
    outcomes = []
    for name, (env_name, container_name) in GUARDED.items():
        argv = guard_of(compose["services"][name])
        shell, flag, script, label, variable = argv[:5]
        assert variable == container_name
        for password, allow in (("admin", ""), ("admin", "true"), ("s3cret-Long", "")):
            env = {
                "PATH": os.environ["PATH"],
                container_name: password,
                "ALLOW_DEFAULT_ADMIN": allow,
            }
            done = subprocess.run(
                [shell, flag, script, label, variable, "echo", "started"],
                env=env,
                capture_output=True,
                text=True,
                timeout=10,
            )
            outcomes.append(done.stdout.strip() == "started")
            if not outcomes[-1]:
                assert f"{name}: refusing" in done.stderr and env_name in text
    expected = [False, True, True] * len(GUARDED)
    ledger.record(
        AREA,
        "compose: passwords from .env, admin/admin refused unless allowed",
        len(outcomes) + 1,
        f"no defaulted passwords, started {expected}",
        f"{f'defaulted {defaulted}' if defaulted else 'no defaulted passwords'}, "
        f"started {outcomes}",
    )
    assert defaulted == [] and outcomes == expected


# ---- issue 14: the web app reads only, answers only its own names, and bounds every answer ----


def serve_app(settings: Settings) -> tuple[WebServer, threading.Thread]:
    server = WebServer(create_app(settings), "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.wait_started(10.0)
    return server, thread


def test_foreign_host_names_are_refused(ledger: Ledger, filled_store: str):
    """DNS rebinding: a page on evil.example re-points its name at 127.0.0.1; the Host header
    still says evil.example, and only our own names are answered."""
    settings = load_settings(store_url=filled_store, web_allowed_hosts="dash.internal")
    server, thread = serve_app(settings)
    port = server.url.rsplit(":", 1)[1]
    foreign = ["evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "localhost.evil", "x"]
    ours = [f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "dash.internal"]
    try:
        with httpx.Client(base_url=server.url) as client:
            refused = [
                client.get("/api/meta", headers={"Host": h}).status_code == 400 for h in foreign
            ]
            answered = [
                client.get("/api/meta", headers={"Host": h}).status_code == 200 for h in ours
            ]
    finally:
        server.stop()
        thread.join(10)
    ledger.record(
        AREA,
        "foreign Host header (DNS rebinding) refused, own names answered",
        len(foreign) + len(ours),
        f"{len(foreign)} x 400, {len(ours)} x 200",
        f"{sum(refused)} x 400, {sum(answered)} x 200",
    )
    assert all(refused) and all(answered)


def test_acting_checks_are_not_reachable_by_get(ledger: Ledger, filled_store: str, tmp_path):
    """`<img src=http://127.0.0.1:8000/health/checks?name=checkpoints>` on any page used to
    delete checkpoint folders; quality-report wrote files. A GET now only reads."""
    settings = load_settings(store_url=filled_store, data_dir=tmp_path)
    stale = tmp_path / "checkpoints" / "old-query"
    stale.mkdir(parents=True)
    (stale / "offsets").write_text("0")
    long_ago = (NOW - timedelta(days=30)).timestamp()
    for path in (stale / "offsets", stale):
        os.utime(path, (long_ago, long_ago))
    asks = [["checkpoints"], ["quality-report"], ["store", "checkpoints"], ["all"], ["quality"]]
    server, thread = serve_app(settings)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            statuses = [client.get("/health/checks", params={"name": a}).status_code for a in asks]
    finally:
        server.stop()
        thread.join(10)
    changed = not stale.exists() or (tmp_path / "reports").exists()
    ledger.record(
        AREA,
        "GET /health/checks cannot run checks that delete or write files",
        len(asks),
        "3 x 403 of 3 acting asks, nothing changed on disk",
        f"{statuses[:3].count(403)} x 403 of 3 acting asks, "
        + ("files changed" if changed else "nothing changed on disk"),
    )
    assert statuses[:3] == [403, 403, 403] and not changed
    assert all(s in (200, 503) for s in statuses[3:])


def test_every_response_carries_a_content_security_policy(ledger: Ledger, served: str):
    spec = httpx.get(f"{served}/openapi.json").json()
    paths = [p for p in spec["paths"] if p != "/api/stream"]
    paths += ["/", "/overview", "/alerts", "/static/app.js", "/docs", "/redoc", "/nope"]
    weak = []
    with httpx.Client(base_url=served, timeout=30) as client:
        for path in paths:
            headers = client.get(path).headers
            policy = headers.get("content-security-policy", "")
            script = next((d for d in policy.split(";") if d.strip().startswith("script-src")), "")
            if (
                not script
                or "'unsafe-inline'" in script
                or "'unsafe-eval'" in script
                or "frame-ancestors 'none'" not in policy
                or headers.get("x-content-type-options") != "nosniff"
            ):
                weak.append(path)
    ledger.record(
        AREA,
        "CSP (scripts from self only, no inline or eval, no framing) on every route",
        len(paths),
        f"{len(paths)} of {len(paths)} routes",
        f"{len(paths) - len(weak)} of {len(paths)} routes",
    )
    assert weak == []


BIG = 40 * 2**20  # well past what the kernel buffers of one loopback socket hold


def read_stalled(host: str, port: int, path: str, pause: float) -> int:
    """Ask for `path`, read nothing for `pause` s, then read to the end: bytes received."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    time.sleep(pause)
    sock.settimeout(20)
    received = 0
    try:
        while chunk := sock.recv(1 << 20):
            received += len(chunk)
    finally:
        sock.close()
    return received


def test_a_client_that_stops_reading_is_dropped(ledger: Ledger, filled_store: str):
    """A client that asks for a large response and stops reading holds the response (and the
    memory behind it); after WEB_SEND_TIMEOUT the server drops it and closes the socket. Two
    shapes: a streamed body (the generator must be stopped too) and one large body."""
    app = create_app(load_settings(store_url=filled_store, web_send_timeout=1))
    stopped = threading.Event()

    def chunks() -> Iterator[bytes]:
        try:
            for _ in range(BIG // 65536):
                yield b"x" * 65536
        finally:
            stopped.set()

    app.get("/test-stream")(lambda: StreamingResponse(chunks()))
    app.get("/test-body")(lambda: PlainTextResponse("x" * BIG))
    server = WebServer(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.wait_started(10.0)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        received = [read_stalled("127.0.0.1", port, p, 4) for p in ("/test-stream", "/test-body")]
        stopped.wait(5)
        still = httpx.get(f"{server.url}/api/meta").status_code
    finally:
        server.stop()
        thread.join(10)
    cut = [n < BIG for n in received]
    ledger.record(
        AREA,
        "client that stops reading a 40 MB response is dropped after WEB_SEND_TIMEOUT",
        2,
        "2 of 2 responses cut off, stream generator stopped, server answers others",
        f"{sum(cut)} of 2 responses cut off, stream generator "
        + ("stopped" if stopped.is_set() else "still running")
        + (", server answers others" if still == 200 else f", server answers {still}"),
    )
    assert all(cut) and stopped.is_set() and still == 200


def test_list_endpoints_are_bounded_and_paged(ledger: Ledger, served: str, filled_store: str):
    store = SqlStore(filled_store)
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(clean_market_data)).scalar_one()
    store.close()
    with httpx.Client(base_url=served, timeout=30) as client:
        too_big = [
            client.get("/api/windows", params={"limit": 10_001}).status_code,
            client.get("/api/anomalies", params={"limit": 1_001}).status_code,
        ]
        pages, seen, cursor = 0, [], None
        while True:
            params: dict[str, object] = {"range": "all", "limit": 10}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/windows", params=params).json()  # type: ignore[arg-type]
            pages += 1
            assert len(page["items"]) <= 10
            seen += [(w["symbol"], w["window_start"]) for w in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
    ledger.record(
        AREA,
        "list endpoints: limit capped, /api/windows paged by cursor",
        len(too_big) + pages,
        f"over-limit 2 x 422, {stored} windows once each",
        f"over-limit {too_big.count(422)} x 422, {len(set(seen))} windows once each"
        + ("" if len(seen) == len(set(seen)) else f" ({len(seen)} sent)"),
    )
    assert too_big == [422, 422] and len(seen) == len(set(seen)) == stored


TICKWATCH_SERVE = [sys.executable, "-m", "tickwatch.cli", "serve"]


def _mount_read_only(source: Path, target: Path) -> bool:
    target.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode != 0:
        return False
    remount = ["mount", "-o", "remount,bind,ro", str(target)]
    if subprocess.run(remount, capture_output=True).returncode != 0:
        subprocess.run(["umount", str(target)], capture_output=True)
        return False
    return True


def test_serve_on_a_read_only_data_dir(ledger: Ledger, filled_store: str, tmp_path: Path):
    """`tickwatch serve` over a data dir mounted read-only (a snapshot, a `:ro` volume) serves
    the stored data instead of crashing with a traceback (SQLite cannot create its -shm)."""
    source = Path(filled_store.removeprefix("sqlite:///")).parent
    target = tmp_path / "ro"
    if not _mount_read_only(source, target):
        pytest.skip("needs root to bind-mount a read-only folder")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "STORE_URL": f"sqlite:///{target / 'sec.db'}", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*TICKWATCH_SERVE, "--data-dir", str(target), "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    symbols: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                meta = httpx.get(f"http://127.0.0.1:{port}/api/meta", timeout=2).json()
                symbols = [s["symbol"] for s in meta["symbols"]]
                break
            except httpx.TransportError:
                time.sleep(0.2)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
        subprocess.run(["umount", str(target)], capture_output=True)
    crashed = "Traceback" in output
    ledger.record(
        AREA,
        "`tickwatch serve` on a read-only data dir",
        1,
        "serves ['AAPL'], no traceback",
        f"serves {symbols}, {'traceback' if crashed else 'no traceback'}",
    )
    assert symbols == ["AAPL"] and not crashed, output[-2000:]
