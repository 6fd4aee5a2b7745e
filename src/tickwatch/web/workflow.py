"""The alert workflow in the API: acknowledge, resolve, mark, snooze and silence, audited.

Writes are POSTs (a GET only reads, STYLE.md 17) and need a token: without API_TOKEN the API
stays read-only and every write answers 403 saying how to enable it; with it, a write needs
`Authorization: Bearer <API_TOKEN>` (401 otherwise; compared in constant time). The token
proves the right to write, not who writes: the person names themselves in `by`, which the
audit (`GET /api/actions`) keeps with the time, the action and the note. A store served as a
read-only snapshot answers 409.

The state lives in its own tables (`store.workflow_rows`) and is joined onto each alert of
`GET /api/alerts` as `state` (status, verdict, snooze, and the silence muting it, if any).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Engine

from tickwatch.config import Settings
from tickwatch.store import workflow
from tickwatch.web.models import AlertState
from tickwatch.web.storeview import StoreView

Action = Literal["acknowledge", "resolve", "reopen", "true_positive", "false_positive", "snooze"]
SilenceKind = Literal[
    "market", "data_fault", "price_spike", "volume_surge", "volatility_burst"
]  # workflow.SILENCE_KINDS
MAX_SILENCE = timedelta(days=30)
READ_ONLY = (
    "the API is read-only: set API_TOKEN on the server to enable writes (acknowledge, "
    "resolve, snooze, silence), then send it as 'Authorization: Bearer <token>'"
)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("add a UTC offset, e.g. 2024-03-04T10:00:00Z")
    return value


class NoteIn(BaseModel):
    by: str = Field(min_length=1, max_length=64, description="who does it (kept in the audit)")
    note: str = Field("", max_length=2000)

    @field_validator("by")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name who does it")
        return value.strip()


class ActionIn(NoteIn):
    action: Action
    until: datetime | None = Field(None, description="snooze only: muted until (with offset)")

    _until = field_validator("until")(_aware)


class SilenceIn(NoteIn):
    symbol: str | None = Field(None, min_length=1, max_length=64)
    kind: SilenceKind | None = Field(None, description="alert kind or feature")
    minutes: float | None = Field(None, gt=0, le=MAX_SILENCE.total_seconds() / 60)
    until: datetime | None = Field(None, description="instead of minutes (with offset)")

    _until = field_validator("until")(_aware)


class SilenceOut(BaseModel):
    silence_id: str
    symbol: str | None
    kind: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    note: str
    lifted_by: str | None
    active: bool


class ActionOut(BaseModel):
    action_id: str
    at: datetime
    actor: str
    action: str
    alert_id: str | None
    silence_id: str | None
    note: str
    detail: str


def state_of(
    row: dict[str, Any] | None,
    alert: dict[str, Any],
    muting: list[workflow.Silence],
    now: datetime,
) -> AlertState:
    """The `state` field of one alert of `GET /api/alerts`."""
    state = AlertState.model_validate(row or {})
    state.snoozed = state.snoozed_until is not None and state.snoozed_until > now
    found = next((s for s in muting if s.active(now) and s.matches(alert)), None)
    state.silenced = None if found is None else found.describe()
    return state


class _Stated(Protocol):
    alert_id: str
    symbol: str
    kind: str
    features: list[str]
    state: AlertState


def attach_states(engine: Engine, items: Sequence[_Stated], now: datetime) -> None:
    """Fill the `state` of each alert of a page (one query for states, one for silences)."""
    found = workflow.states(engine, [a.alert_id for a in items])
    muting = workflow.list_silences(engine, now)
    for a in items:
        row = {"alert_id": a.alert_id, "symbol": a.symbol, "kind": a.kind}
        a.state = state_of(found.get(a.alert_id), {**row, "features": ",".join(a.features)},
                           muting, now)  # fmt: skip


def _silence_out(silence: workflow.Silence, now: datetime) -> SilenceOut:
    return SilenceOut(**workflow.silence_row(silence), active=silence.active(now))


def workflow_router(
    settings: Settings, store: StoreView, clock: Callable[[], datetime]
) -> APIRouter:
    """The workflow routes over `store`; writes guarded by `settings.api_token`."""
    token = settings.api_token.get_secret_value().encode()
    engine = store.engine

    def writer(
        authorization: Annotated[str | None, Header(description="Bearer <API_TOKEN>")] = None,
    ) -> None:
        if not token:
            raise HTTPException(403, READ_ONLY)
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            raise HTTPException(
                401,
                "send 'Authorization: Bearer <token>' with the server's API_TOKEN",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if store.read_only:
            raise HTTPException(409, "the store is a read-only snapshot: nothing can be written")

    router = APIRouter(tags=["workflow"])
    write = [Depends(writer)]

    @router.post("/api/alerts/{alert_id}/actions", response_model=AlertState, dependencies=write)
    def act(alert_id: Annotated[str, PathParam(max_length=64)], body: ActionIn) -> AlertState:
        """Acknowledge, resolve, reopen, mark as a true or false positive, or snooze (with
        `until`) one alert. Audited; needs the token."""
        now = clock()
        if body.action == "snooze" and (body.until is None or body.until <= now):
            raise HTTPException(422, "snooze needs `until`, a time after now (with offset)")
        if body.action != "snooze" and body.until is not None:
            raise HTTPException(422, "`until` goes with snooze only")
        try:
            row = workflow.act(engine, alert_id, body.action, body.by, body.note, now, body.until)
        except workflow.NoSuchAlert:
            raise HTTPException(404, f"no alert {alert_id!r}: take ids from /api/alerts") from None
        return state_of(row, {}, [], now)

    @router.get("/api/alerts/{alert_id}/actions", response_model=list[ActionOut])
    def alert_actions(alert_id: Annotated[str, PathParam(max_length=64)]) -> list[ActionOut]:
        """What was done with one alert, newest first."""
        return [ActionOut(**a) for a in workflow.actions(engine, alert_id)]

    @router.get("/api/actions", response_model=list[ActionOut])
    def audit(limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[ActionOut]:
        """The audit of every workflow write (alerts and silences), newest first."""
        return [ActionOut(**a) for a in workflow.actions(engine, None, limit)]

    @router.get("/api/silences", response_model=list[SilenceOut])
    def silences(
        ended: Annotated[bool, Query(description="also the silences that ended")] = False,
    ) -> list[SilenceOut]:
        """Silences in force (soonest end first); with `ended`, past ones after them."""
        now = clock()
        return [_silence_out(s, now) for s in workflow.list_silences(engine, now, ended)]

    @router.post("/api/silences", response_model=SilenceOut, status_code=201, dependencies=write)
    def silence(body: SilenceIn) -> SilenceOut:
        """Mute the notices of a symbol and/or a kind for `minutes` (or until `until`).
        Audited; needs the token."""
        now = clock()
        if (body.minutes is None) == (body.until is None):
            raise HTTPException(422, "give either `minutes` or `until`")
        ends = body.until if body.until is not None else now + timedelta(minutes=body.minutes or 0)
        if ends - now > MAX_SILENCE:
            raise HTTPException(422, "a silence lasts at most 30 days")
        try:
            made = workflow.add_silence(
                engine, body.symbol, body.kind, ends, body.by, body.note, now
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return _silence_out(made, now)

    @router.post("/api/silences/{silence_id}/lift", response_model=SilenceOut, dependencies=write)
    def lift(silence_id: Annotated[str, PathParam(max_length=64)], body: NoteIn) -> SilenceOut:
        """End a silence now. Audited; needs the token."""
        now = clock()
        try:
            lifted = workflow.lift_silence(engine, silence_id, body.by, body.note, now)
        except workflow.NoSuchAlert:
            raise HTTPException(404, f"no silence {silence_id!r}: see /api/silences") from None
        return _silence_out(lifted, now)

    return router
