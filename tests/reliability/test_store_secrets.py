"""Partial secrets (issue 14, class 9): no piece of a key or password shows, however the text
around it is cut, and whatever characters a password holds.

- an upstream error body that echoes the key across the 200-character cut (real HTTP server
  on loopback);
- a database password with `@` in it, in `tickwatch check store` and in `tickwatch serve`
  when the database refuses (real processes; port 1 on loopback refuses).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import httpx
import pytest
from pytest_httpserver import HTTPServer

from tests.ledger import Ledger
from tickwatch.errors import SourceError
from tickwatch.sources.fetch import Fetcher

KEY = "K3yQ8wZp2Lm7Xv4N"
PASSWORD = "s3cr@tPa55w0rd"
TICKWATCH = [sys.executable, "-m", "tickwatch.cli"]
AREA = "security"


def pieces(secret: str, size: int = 5) -> list[str]:
    """Every run of `size` characters of `secret`: none may show."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def leaked(text: str, secret: str) -> list[str]:
    return [p for p in pieces(secret) if p in text]


@pytest.mark.parametrize("offset", [172, 176, 180, 184])  # the key starts at 187-199
def test_an_echoed_key_is_masked_before_the_error_is_cut(
    ledger: Ledger, httpserver: HTTPServer, offset: int
) -> None:
    body = "e" * offset + f"invalid apikey={KEY} for this call" + "." * 300
    httpserver.expect_request("/query").respond_with_data(body, status=401)
    fetcher = Fetcher(httpx.Client(), lambda: datetime(2024, 3, 4, tzinfo=UTC), attempts=1)
    with pytest.raises(SourceError) as error:
        fetcher.get_json(httpserver.url_for("/query"), threading.Event(), params={"apikey": KEY})
    found = leaked(str(error.value), KEY)
    ledger.record(AREA, "upstream error echoing the key across the 200-character cut", 1,
                  "no piece of the key", found or "no piece of the key")  # fmt: skip
    assert found == []


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    url = f"postgresql://tickwatch:{PASSWORD}@127.0.0.1:1/tickwatch"
    env = {**os.environ, "STORE_URL": url, "COLUMNS": "400"}
    return subprocess.run([*TICKWATCH, *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_database_password_with_at_signs_never_shows(ledger: Ledger) -> None:
    check = _run("check", "store")
    serve = _run("serve", "--port", "0")
    shown = check.stdout + check.stderr + serve.stdout + serve.stderr
    expected = "check exit 1, serve exit 2 without traceback, no piece of the password"
    found = (
        f"check exit {check.returncode}, serve exit {serve.returncode} "
        f"{'with' if 'Traceback' in serve.stderr else 'without'} traceback, "
        f"{leaked(shown, PASSWORD) or 'no piece of the password'}"
    )
    ledger.record(AREA, "database password with '@' (check store, serve)", 2, expected, found)
    assert found == expected, shown[-3000:]
    assert "127.0.0.1" in check.stdout  # the host is parsed as the host, not as password


def test_a_password_with_at_signs_connects_to_a_real_postgresql(
    ledger: Ledger, postgres_db: str
) -> None:
    """The test role's password set to one holding `@` (restored afterwards), written raw in
    STORE_URL: the store logs in (the user info ends at the last `@`) and shows the URL with
    the password as ***."""
    from sqlalchemy import create_engine, text

    from tickwatch.store import SqlStore
    from tickwatch.store.sql import clean_market_data, parse_url

    credentials, host = postgres_db.split("://", 1)[1].split("@", 1)
    user, old = credentials.split(":", 1)

    def set_password(url: str, password: str) -> None:
        engine = create_engine(parse_url(url))
        with engine.begin() as conn:
            conn.execute(text(f"ALTER ROLE CURRENT_USER PASSWORD '{password}'"))
        engine.dispose()

    url = f"postgresql://{user}:{PASSWORD}@{host}"
    set_password(postgres_db, PASSWORD)
    try:
        store = SqlStore(url)
        found = f"{store.count(clean_market_data)} rows, shown as {store.engine_url_masked}"
        store.close()
    finally:
        set_password(url, old)
    expected = f"0 rows, shown as postgresql+psycopg://{user}:***@{host}"
    ledger.record(AREA, "database password with '@' logs in (real PostgreSQL)", 1, expected,
                  found)  # fmt: skip
    assert found == expected
