"""A new user's first session, end to end: `tickwatch run` on the simulator (as `make run`
starts it, with API_TOKEN set) in a real process, then the dashboard in Chromium, from the
home page to acknowledging an alert; the acknowledgement is stored and still shown after a
reload. Nothing is faked between the simulated market and the browser."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.chromium import open_dashboard

pytestmark = pytest.mark.browser
TOKEN = "first-session-token-9QX2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def first_alert(base_url: str, deadline: float) -> None:
    """Wait until the running pipeline has stored an alert episode."""
    while time.monotonic() < deadline:
        try:
            body = httpx.get(f"{base_url}/api/alerts", params={"range": "all"}, timeout=5).json()
            if body["total"] > 0:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass  # the server is still starting
        time.sleep(1)
    raise AssertionError("no alert episode within the time allowed")


def test_from_tickwatch_run_to_an_acknowledged_alert(tmp_path: Path, page: Page) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "API_TOKEN": TOKEN,
        "WEB_PORT": str(port),
        "SIM_HISTORY_HOURS": "6",  # a few hours of market, so alerts exist at once
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickwatch.cli", "run", "--source", "simulate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        first_alert(base_url, time.monotonic() + 120)
        open_dashboard(page, f"{base_url}/")
        page.click("#tabs a[data-dash='alerts']")
        open_dashboard(page, page.url)
        page.click("#ranges button[data-range='all']")
        row = page.locator("#alert-table tbody tr[data-key]").first
        expect(row).to_be_visible()
        alert_id = row.get_attribute("data-key")
        expect(page.locator("#wf-mode")).to_have_text("writes need the server's API_TOKEN")
        page.fill("#wf-by", "new user")
        page.fill("#wf-token", TOKEN)
        page.locator(f"#alert-table tr[data-key='{alert_id}']").click()
        panel = page.locator(f".workflow[data-alert='{alert_id}']")
        panel.locator(".wf-note").fill("first look")
        panel.locator("button[data-action='acknowledge']").click()
        shown = page.locator(f"#alert-table tr[data-key='{alert_id}'] .pill.acknowledged")
        expect(shown).to_have_text("acknowledged")
        expect(panel.locator(".wf-state")).to_contain_text("acknowledged by new user at")

        db = tmp_path / "simulated" / "tickwatch.db"
        with sqlite3.connect(db) as conn:
            stored = conn.execute(
                "SELECT status, status_by FROM alert_states WHERE alert_id = ?", (alert_id,)
            ).fetchall()
            audit = conn.execute(
                "SELECT actor, action, note FROM alert_actions WHERE alert_id = ?", (alert_id,)
            ).fetchall()
        assert stored == [("acknowledged", "new user")]
        assert audit == [("new user", "acknowledge", "first look")]

        page.reload()
        open_dashboard(page, page.url)
        expect(shown).to_have_text("acknowledged")  # from the store, after a reload
        page.close()  # before the server stops: no refused reconnect in the console
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert proc.returncode == 0, output[-3000:]
