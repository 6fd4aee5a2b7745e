"""The alert workflow over the API on a real store: auth, state, audit, silences.

The store holds the three episodes of test_api (a1 AAPL market, closed; a2 bitcoin market,
open; a3 bitcoin data_fault). The app's clock is fixed at NOW (2026-01-01 12:00 UTC), so every
expected time below is NOW or NOW plus the minutes given.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_api import ALERTS, ANOMALIES, WINDOWS
from tickwatch.config import Settings
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts
from tickwatch.store.workflow_rows import alert_actions, alert_states, silences
from tickwatch.web import create_app

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = "s3cret-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_db")
        return url
    return f"sqlite:///{tmp_path / 'tickwatch.db'}"


def seeded(url: str) -> None:
    store = SqlStore(url)
    store.write(WINDOWS, ANOMALIES)
    store.upsert(alerts, ALERTS)
    store.close()


def client_for(url: str, tmp_path: Path, token: str) -> TestClient:
    settings = Settings(store_url=url, data_dir=tmp_path, api_token=token)  # type: ignore[arg-type]
    return TestClient(create_app(settings, clock=lambda: NOW), base_url="http://127.0.0.1")


@pytest.fixture
def client(store_url: str, tmp_path: Path) -> Iterator[TestClient]:
    seeded(store_url)
    with client_for(store_url, tmp_path, TOKEN) as test_client:
        yield test_client


def counts(url: str) -> tuple[int, int, int]:
    store = SqlStore(url)
    try:
        return tuple(store.count(t) for t in (alert_actions, alert_states, silences))  # type: ignore[return-value]
    finally:
        store.close()


def by_id(client: TestClient) -> dict[str, dict[str, object]]:
    page = client.get("/api/alerts", params={"range": "all"})
    assert page.status_code == 200, page.text
    return {a["alert_id"]: a for a in page.json()["items"]}


def test_without_a_token_the_api_is_read_only(store_url: str, tmp_path: Path) -> None:
    seeded(store_url)
    with client_for(store_url, tmp_path, "") as client:
        body = {"action": "acknowledge", "by": "ana"}
        refused = client.post("/api/alerts/a1/actions", json=body, headers=AUTH)
        assert refused.status_code == 403
        assert "set API_TOKEN" in refused.json()["detail"]
        silence = {"symbol": "AAPL", "minutes": 60, "by": "ana"}
        assert client.post("/api/silences", json=silence).status_code == 403
        assert by_id(client)["a1"]["state"]["status"] is None
    assert counts(store_url) == (0, 0, 0)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
)
def test_a_wrong_or_missing_token_is_401(
    client: TestClient, store_url: str, headers: dict[str, str]
) -> None:
    answer = client.post(
        "/api/alerts/a1/actions", json={"action": "acknowledge", "by": "ana"}, headers=headers
    )
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert counts(store_url) == (0, 0, 0)


def test_writes_are_not_reachable_by_get_and_gets_change_nothing(
    client: TestClient, store_url: str
) -> None:
    for path in ("/api/alerts/a1/actions", "/api/silences", "/api/actions"):
        assert client.get(path, headers=AUTH).status_code == 200
    assert client.get("/api/silences/x/lift", headers=AUTH).status_code == 405
    assert client.get("/api/alerts", params={"range": "all"}, headers=AUTH).status_code == 200
    assert counts(store_url) == (0, 0, 0)


def test_acknowledge_resolve_mark_and_snooze_show_on_the_alert_and_in_the_audit(
    client: TestClient, store_url: str
) -> None:
    def act(alert_id: str, **body: object) -> dict[str, object]:
        answer = client.post(f"/api/alerts/{alert_id}/actions", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    act("a1", action="acknowledge", by="ana", note="looking")
    act("a1", action="true_positive", by="bo", note="earnings")
    state = act("a1", action="resolve", by="bo", note="done")
    assert state["status"] == "resolved" and state["status_by"] == "bo"
    until = NOW + timedelta(minutes=90)
    snoozed = act("a2", action="snooze", by="ana", until=until.isoformat())
    assert snoozed["snoozed"] is True

    rows = by_id(client)
    a1, a2, a3 = rows["a1"]["state"], rows["a2"]["state"], rows["a3"]["state"]
    assert (a1["status"], a1["status_by"], a1["status_at"]) == (
        "resolved",
        "bo",
        "2026-01-01T12:00:00Z",
    )
    assert (a1["verdict"], a1["verdict_by"], a1["note"]) == ("true_positive", "bo", "done")
    assert a1["snoozed"] is False and a1["snoozed_until"] is None
    assert (a2["snoozed"], a2["snoozed_by"], a2["snoozed_until"]) == (
        True,
        "ana",
        "2026-01-01T13:30:00Z",
    )
    assert a2["status"] is None
    assert a3 == {k: (False if k == "snoozed" else None) for k in a3}
    # the existing fields are untouched
    assert rows["a1"]["summary"] == "AAPL market from 10:05"

    audit = client.get("/api/alerts/a1/actions").json()
    assert {(a["actor"], a["action"], a["note"]) for a in audit} == {
        ("ana", "acknowledge", "looking"),
        ("bo", "true_positive", "earnings"),
        ("bo", "resolve", "done"),
    }
    assert {a["at"] for a in audit} == {"2026-01-01T12:00:00Z"}
    everything = client.get("/api/actions").json()
    assert len(everything) == 4
    assert [a["detail"] for a in everything if a["alert_id"] == "a2"] == [
        "until 2026-01-01T13:30:00+00:00"
    ]
    assert counts(store_url) == (4, 2, 0)


def test_bad_actions_are_refused_and_not_audited(client: TestClient, store_url: str) -> None:
    def post(alert_id: str, **body: object) -> int:
        return client.post(f"/api/alerts/{alert_id}/actions", json=body, headers=AUTH).status_code

    assert post("nope", action="acknowledge", by="ana") == 404
    assert post("a1", action="delete", by="ana") == 422
    assert post("a1", action="acknowledge", by="  ") == 422
    assert post("a1", action="snooze", by="ana") == 422  # no until
    assert post("a1", action="snooze", by="ana", until="2025-01-01T00:00:00Z") == 422  # past
    assert post("a1", action="snooze", by="ana", until="2026-01-02T00:00:00") == 422  # naive
    assert post("a1", action="resolve", by="ana", until="2026-01-02T00:00:00Z") == 422
    assert counts(store_url) == (0, 0, 0)


def test_silences_are_listed_shown_on_alerts_and_lifted(client: TestClient, store_url: str) -> None:
    made = client.post(
        "/api/silences",
        json={
            "symbol": "bitcoin",
            "kind": "volume_surge",
            "minutes": 30,
            "by": "ana",
            "note": "halving",
        },
        headers=AUTH,
    )
    assert made.status_code == 201, made.text
    silence = made.json()
    assert (silence["starts_at"], silence["ends_at"]) == (
        "2026-01-01T12:00:00Z",
        "2026-01-01T12:30:00Z",
    )
    assert silence["active"] is True
    listed = client.get("/api/silences").json()
    assert [s["silence_id"] for s in listed] == [silence["silence_id"]]

    rows = by_id(client)
    # a2 and a3 are bitcoin alerts with the feature volume_surge; a1 is AAPL
    expected = "symbol bitcoin, kind volume_surge until 2026-01-01T12:30:00+00:00 by ana: halving"
    assert rows["a2"]["state"]["silenced"] == expected
    assert rows["a3"]["state"]["silenced"] == expected
    assert rows["a1"]["state"]["silenced"] is None

    bad = client.post("/api/silences", json={"minutes": 5, "by": "ana"}, headers=AUTH)
    assert bad.status_code == 422 and "symbol, a kind or both" in bad.text
    assert (
        client.post("/api/silences", json={"symbol": "AAPL", "by": "ana"}, headers=AUTH).status_code
        == 422
    )
    assert (
        client.post(
            "/api/silences",
            json={"symbol": "AAPL", "minutes": 60 * 24 * 31, "by": "ana"},
            headers=AUTH,
        ).status_code
        == 422
    )

    lifted = client.post(
        f"/api/silences/{silence['silence_id']}/lift",
        json={"by": "bo", "note": "over"},
        headers=AUTH,
    )
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["ends_at"] == "2026-01-01T12:00:00Z"
    assert lifted.json()["lifted_by"] == "bo" and lifted.json()["active"] is False
    assert client.get("/api/silences").json() == []
    assert len(client.get("/api/silences", params={"ended": "true"}).json()) == 1
    assert by_id(client)["a2"]["state"]["silenced"] is None
    actions = [(a["action"], a["actor"]) for a in client.get("/api/actions").json()]
    assert sorted(actions) == [("lift_silence", "bo"), ("silence", "ana")]
    assert counts(store_url) == (2, 0, 1)
