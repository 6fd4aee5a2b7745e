"""The alert workflow in real Chromium: acknowledge an alert and silence a symbol with a token.

The store holds test_api's rows (episode a1: AAPL, closed); the app runs with API_TOKEN set.
A person types their name and the token in the Workflow card, opens a1, acknowledges it with a
note, then silences AAPL for an hour and lifts the silence; the page shows each step and the
store holds the state and the audit.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from tests.e2e.chromium import open_dashboard, serve
from tests.integration.test_api import ALERTS, ANOMALIES, WINDOWS
from tickwatch.config import Settings
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts
from tickwatch.store.workflow_rows import alert_actions, alert_states
from tickwatch.web import create_app

pytestmark = pytest.mark.browser
TOKEN = "dashboard-token-3F7K"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path, store_url=None, api_token=TOKEN)  # type: ignore[arg-type]
    store = SqlStore(settings.database_url)
    store.write(WINDOWS, ANOMALIES)
    store.upsert(alerts, ALERTS)
    store.close()
    return settings


@pytest.fixture
def base_url(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


def test_acknowledge_and_silence_from_the_dashboard(
    base_url: str, settings: Settings, page: Page
) -> None:  # the page first closes, then the server stops: no refused reconnect
    open_dashboard(page, f"{base_url}/alerts?range=all")
    expect(page.locator("#wf-mode")).to_have_text("writes need the server's API_TOKEN")
    expect(page.locator("#silence-list")).to_have_text("No silence in force")
    page.fill("#wf-by", "ana")
    page.fill("#wf-token", TOKEN)

    page.click("#alert-table tr[data-key='a1']")
    panel = page.locator(".workflow[data-alert='a1']")
    expect(panel.locator(".wf-state")).to_have_text("nobody acted on this alert yet")
    panel.locator(".wf-note").fill("earnings, looking")
    panel.locator("button[data-action='acknowledge']").click()

    expect(page.locator("#alert-table tr[data-key='a1'] .pill.acknowledged")).to_have_text(
        "acknowledged"
    )
    expect(panel.locator(".wf-state")).to_contain_text("acknowledged by ana at")
    expect(panel.locator(".wf-state")).to_contain_text("note: earnings, looking")
    store = SqlStore(settings.database_url)
    with store.engine.connect() as conn:
        state = conn.execute(select(alert_states.c.status, alert_states.c.status_by)).all()
        audit = conn.execute(
            select(alert_actions.c.actor, alert_actions.c.action, alert_actions.c.note)
        ).all()
    assert [tuple(r) for r in state] == [("acknowledged", "ana")]
    assert [tuple(r) for r in audit] == [("ana", "acknowledge", "earnings, looking")]

    panel.locator(".wf-scope").select_option("symbol:AAPL")
    panel.locator("button[data-action='silence']").click()
    silence = page.locator("#silence-list li[data-silence]")
    expect(silence).to_contain_text("AAPL")
    expect(silence).to_contain_text("by ana")
    expect(page.locator("#alert-table tr[data-key='a1'] .pill.silenced")).to_have_count(1)
    expect(panel.locator(".wf-state")).to_contain_text("silenced: symbol AAPL until")

    silence.locator("button").click()
    expect(page.locator("#silence-list")).to_have_text("No silence in force")
    expect(page.locator("#alert-table tr[data-key='a1'] .pill.silenced")).to_have_count(0)
    with store.engine.connect() as conn:
        actions = conn.execute(select(alert_actions.c.action).order_by(alert_actions.c.at)).all()
    store.close()
    assert sorted(r[0] for r in actions) == ["acknowledge", "lift_silence", "silence"]
