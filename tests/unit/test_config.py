"""Settings: defaults, parsing, clear errors, and .env.example kept in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tickwatch.config import Settings, load_settings
from tickwatch.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_reference_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)  # no .env
    s = load_settings()
    assert s.alpha_vantage_api_key.get_secret_value() == "demo"
    assert s.stock_symbols == ["AAPL", "MSFT", "GOOGL", "AMZN", "TSLA"]
    assert s.crypto_ids == ["bitcoin", "ethereum", "solana", "cardano", "ripple"]
    assert (s.stock_poll_interval, s.crypto_poll_interval) == (60, 30)
    assert (s.window_minutes, s.lookback_windows, s.min_history) == (5, 20, 5)
    assert (s.z_threshold, s.severity_medium, s.severity_high) == (3, 4, 5)
    assert s.allowed_lateness_minutes == 10


def test_comma_lists_from_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STOCK_SYMBOLS", " IBM, NVDA ,")
    assert load_settings().stock_symbols == ["IBM", "NVDA"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WINDOW_MINUTES", "-5", "WINDOW_MINUTES"),
        ("BUS", "rabbit", "BUS"),
        ("Z_THRESHOLD", "6", "Z_THRESHOLD < SEVERITY_MEDIUM < SEVERITY_HIGH"),
        ("MIN_HISTORY", "50", "MIN_HISTORY (50) cannot exceed LOOKBACK_WINDOWS"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings()


def test_secrets_are_masked_in_repr():
    s = load_settings(alpha_vantage_api_key="sekrit-key", postgres_password="pw-123")
    assert "sekrit-key" not in repr(s) and "pw-123" not in repr(s)


def test_env_example_lists_every_setting_with_its_default():
    text = (ROOT / ".env.example").read_text()
    documented = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, re.M))
    assert set(documented) == {name.upper() for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        if isinstance(default, list):
            default = ",".join(default)
        assert documented[name.upper()] == ("" if default is None else str(default)), name


def test_configured_secrets_never_reach_the_log(monkeypatch: pytest.MonkeyPatch, capsys):
    import logging

    from tickwatch.cli.common import setup_logging

    s = load_settings(
        alpha_vantage_api_key="AVKEY-123456",
        store_url="postgresql+psycopg://user:pg-pass-99@localhost/db",
    )
    assert set(s.secret_values()) >= {"AVKEY-123456", "pg-pass-99"}
    setup_logging("INFO", s.secret_values())
    logging.getLogger("tickwatch.test").error(
        "GET /query?apikey=%s failed; store %s", "AVKEY-123456", s.store_url
    )
    err = capsys.readouterr().err
    assert "AVKEY-123456" not in err and "pg-pass-99" not in err
    assert "apikey=***" in err
