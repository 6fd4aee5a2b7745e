"""STORE_URL parsing: the user info ends at the last `@`; the password never shows."""

from __future__ import annotations

import pytest

from tickwatch.errors import StoreError
from tickwatch.store.sql import masked_url, parse_url


@pytest.mark.parametrize(
    ("url", "password", "host", "port", "database"),
    [
        ("postgresql://u:p@ss@db.example:5433/tw", "p@ss", "db.example", 5433, "tw"),
        ("postgresql://u:p%40ss@db/tw", "p@ss", "db", None, "tw"),
        ("postgresql+psycopg://u:a@b@c@[::1]:5432/tw", "a@b@c", "::1", 5432, "tw"),
        ("postgres://u@h/tw", None, "h", None, "tw"),
    ],
)
def test_postgresql_urls(url: str, password: str | None, host: str, port: int | None,
                         database: str) -> None:  # fmt: skip
    parsed = parse_url(url)
    assert (parsed.drivername, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "postgresql+psycopg",
        password,
        host,
        port,
        database,
    )
    shown = masked_url(url)
    assert password is None or (password not in shown and "***" in shown)


def test_sqlite_urls_are_left_to_sqlalchemy() -> None:
    assert parse_url("sqlite:///data/tickwatch.db").database == "data/tickwatch.db"


def test_a_bad_port_is_an_error_without_the_url() -> None:
    with pytest.raises(StoreError) as error:
        parse_url("postgresql://u:secret@h:port/tw")
    assert "secret" not in str(error.value)
