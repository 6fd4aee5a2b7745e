"""The alert workflow on the store: act on an alert, silence, and what is muted now.

Every write is one transaction that appends its audit row (`alert_actions`) and changes the
current state (`alert_states` or `silences`), so the audit and the state never disagree.
Times come in as arguments (`now`): the web app passes its clock, tests pass a fixed time.

Actions on an alert (`ACTIONS`): `acknowledge` and `resolve` set its status, `reopen` clears
it; `true_positive` and `false_positive` set its verdict (the marks `tickwatch evaluate
--feedback` counts); `snooze` mutes its notices until a time.

A silence mutes a symbol and/or a kind from its start to its end. The kind is an alert kind
(`market`, `data_fault`) or a feature (`price_spike`, `volume_surge`, `volatility_burst`,
matched against the alert's features). A market-wide event notice carries no symbol: only a
silence of kind `market` without a symbol mutes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tickwatch.model import AnomalyType
from tickwatch.store.alert_rows import alerts
from tickwatch.store.workflow_rows import alert_actions, alert_states, silences

ACTIONS = ("acknowledge", "resolve", "reopen", "true_positive", "false_positive", "snooze")
STATUS = {"acknowledge": "acknowledged", "resolve": "resolved", "reopen": None}
VERDICTS = ("true_positive", "false_positive")
ALERT_KINDS = ("market", "data_fault")
SILENCE_KINDS = ALERT_KINDS + tuple(t.value for t in AnomalyType)


class NoSuchAlert(LookupError):
    """The alert (or silence) id is not in the store."""


@dataclass(frozen=True, slots=True)
class Silence:
    silence_id: str
    symbol: str | None
    kind: str | None
    starts_at: datetime
    ends_at: datetime
    created_by: str
    note: str
    lifted_by: str | None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether this silence mutes the alert (or market event) `row`."""
        if "alert_id" not in row or row.get("alert_id") is None:
            return self.symbol is None and self.kind == "market"
        if self.symbol is not None and row.get("symbol") != self.symbol:
            return False
        if self.kind is None:
            return True
        features = str(row.get("features") or "").split(",")
        return row.get("kind") == self.kind or self.kind in features

    def describe(self) -> str:
        scope = ", ".join(
            f"{name} {value}"
            for name, value in (("symbol", self.symbol), ("kind", self.kind))
            if value
        )
        note = f": {self.note}" if self.note else ""
        return (
            f"{scope} until {self.ends_at.isoformat(timespec='seconds')} by {self.created_by}{note}"
        )


def _upsert(conn: Connection) -> Callable[..., Any]:
    return sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert


def _audit(
    conn: Connection,
    now: datetime,
    actor: str,
    action: str,
    note: str,
    alert_id: str | None = None,
    silence_id: str | None = None,
    detail: str = "",
) -> None:
    row = {
        "action_id": uuid.uuid4().hex,
        "at": now,
        "actor": actor,
        "action": action,
        "alert_id": alert_id,
        "silence_id": silence_id,
        "note": note,
        "detail": detail,
    }
    conn.execute(insert(alert_actions), [row])


def act(
    engine: Engine,
    alert_id: str,
    action: str,
    actor: str,
    note: str,
    now: datetime,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Apply one action to an alert; its new state row. NoSuchAlert for an unknown id."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}: use one of {', '.join(ACTIONS)}")
    if (action == "snooze") != (until is not None):
        raise ValueError("give `until` with snooze, and only with snooze")
    with engine.begin() as conn:
        found = conn.execute(select(alerts.c.alert_id).where(alerts.c.alert_id == alert_id))
        if found.first() is None:
            raise NoSuchAlert(alert_id)
        old = conn.execute(select(alert_states).where(alert_states.c.alert_id == alert_id))
        previous = old.first()
        state: dict[str, Any] = (
            dict(previous._mapping)
            if previous is not None
            else {c.name: None for c in alert_states.columns}
        )
        state.update(alert_id=alert_id, updated_at=now, note=note or state["note"])
        if action in STATUS:
            status = STATUS[action]
            state.update(status=status, status_by=actor if status else None)
            state["status_at"] = now if status else None
        elif action in VERDICTS:
            state.update(verdict=action, verdict_by=actor, verdict_at=now)
        else:
            state.update(snoozed_until=until, snoozed_by=actor)
        statement = _upsert(conn)(alert_states)
        keep = {k: statement.excluded[k] for k in state if k != "alert_id"}
        conn.execute(statement.on_conflict_do_update(index_elements=["alert_id"], set_=keep), state)
        detail = f"until {until.isoformat(timespec='seconds')}" if until is not None else ""
        _audit(conn, now, actor, action, note, alert_id=alert_id, detail=detail)
    return state


def add_silence(
    engine: Engine,
    symbol: str | None,
    kind: str | None,
    ends_at: datetime,
    actor: str,
    note: str,
    now: datetime,
) -> Silence:
    """Mute `symbol` and/or `kind` from now until `ends_at` (audited as `silence`)."""
    if symbol is None and kind is None:
        raise ValueError("a silence needs a symbol, a kind or both")
    if kind is not None and kind not in SILENCE_KINDS:
        raise ValueError(f"kind {kind!r}: use one of {', '.join(SILENCE_KINDS)}")
    if ends_at <= now:
        raise ValueError(f"the silence ends at {ends_at.isoformat(timespec='seconds')}, before now")
    silence = Silence(uuid.uuid4().hex, symbol, kind, now, ends_at, actor, note, None)
    with engine.begin() as conn:
        conn.execute(insert(silences), [silence_row(silence)])
        detail = silence.describe()
        _audit(conn, now, actor, "silence", note, silence_id=silence.silence_id, detail=detail)
    return silence


def lift_silence(engine: Engine, silence_id: str, actor: str, note: str, now: datetime) -> Silence:
    """End a silence now (audited as `lift_silence`); NoSuchAlert for an unknown id."""
    with engine.begin() as conn:
        row = conn.execute(select(silences).where(silences.c.silence_id == silence_id)).first()
        if row is None:
            raise NoSuchAlert(silence_id)
        silence = Silence(**row._mapping)
        if silence.ends_at > now:
            silence = Silence(**{**silence_row(silence), "ends_at": now, "lifted_by": actor})
            conn.execute(
                update(silences)
                .where(silences.c.silence_id == silence_id)
                .values(ends_at=now, lifted_by=actor)
            )
        _audit(conn, now, actor, "lift_silence", note, silence_id=silence_id)
    return silence


def silence_row(silence: Silence) -> dict[str, Any]:
    return {name: getattr(silence, name) for name in Silence.__slots__}


def list_silences(engine: Engine, now: datetime, ended: bool = False) -> list[Silence]:
    """Silences in force at `now` (or not yet started), soonest end first; `ended` adds the
    past ones (newest first after the active ones)."""
    query = select(silences)
    if not ended:
        query = query.where(silences.c.ends_at > now)
    with engine.connect() as conn:
        found = [Silence(**r._mapping) for r in conn.execute(query)]

    def order(s: Silence) -> tuple[bool, float]:
        ended = s.ends_at <= now
        return ended, -s.ends_at.timestamp() if ended else s.ends_at.timestamp()

    return sorted(found, key=order)


def states(engine: Engine, alert_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The workflow state of each of `alert_ids` that has one."""
    ids = list(alert_ids)
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(alert_states).where(alert_states.c.alert_id.in_(ids)))
        return {r.alert_id: dict(r._mapping) for r in rows}


def actions(engine: Engine, alert_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Audit rows, newest first; those of one alert when `alert_id` is given."""
    query = select(alert_actions).order_by(alert_actions.c.at.desc()).limit(limit)
    if alert_id is not None:
        query = query.where(alert_actions.c.alert_id == alert_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def suppression(engine: Engine, row: Mapping[str, Any], now: datetime) -> str | None:
    """Why a notice about `row` (an alert or a market event) must not be sent at `now`:
    `silenced: ...` or `snoozed: ...`; None when nothing mutes it."""
    for silence in list_silences(engine, now):
        if silence.active(now) and silence.matches(row):
            return f"silenced: {silence.describe()}"
    alert_id = row.get("alert_id")
    if alert_id is None:
        return None
    state = states(engine, [str(alert_id)]).get(str(alert_id))
    until = None if state is None else state["snoozed_until"]
    if state is not None and isinstance(until, datetime) and until > now:
        return f"snoozed: until {until.isoformat(timespec='seconds')} by {state['snoozed_by']}"
    return None


@dataclass(frozen=True, slots=True)
class Feedback:
    """The true/false-positive marks stored so far; precision = true / marks (None for 0)."""

    marks: int
    true: int
    false: int

    @property
    def precision(self) -> float | None:
        return self.true / self.marks if self.marks else None


def feedback(engine: Engine) -> Feedback:
    verdict = alert_states.c.verdict
    with engine.connect() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                select(verdict, func.count()).where(verdict.is_not(None)).group_by(verdict)
            ).all()
        )
    true, false = int(counts.get("true_positive", 0)), int(counts.get("false_positive", 0))
    return Feedback(true + false, true, false)
