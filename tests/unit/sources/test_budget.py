"""The call budget, by hand: per-minute window, spreading to midnight, exhaustion, new day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwatch.sources.budget import CallBudget, next_midnight

T0 = datetime(2024, 3, 11, 14, 0, tzinfo=UTC)  # 10 h = 36,000 s before midnight UTC


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_next_midnight_is_the_next_utc_day() -> None:
    assert next_midnight(T0) == datetime(2024, 3, 12, tzinfo=UTC)
    assert next_midnight(datetime(2024, 3, 12, tzinfo=UTC)) == datetime(2024, 3, 13, tzinfo=UTC)


def test_first_call_goes_at_once() -> None:
    assert CallBudget(5, 25).next_call_at(T0) == T0


def test_urgent_calls_respect_only_the_minute_limit() -> None:
    budget = CallBudget(per_minute=2, per_day=100)
    budget.record(at(0))
    assert budget.next_call_at(at(0), urgent=True) == at(30)  # 60 s / 2
    budget.record(at(30))
    # two calls in the last minute: the third waits until the first is a minute old
    assert budget.next_call_at(at(30), urgent=True) == at(60)


def test_routine_calls_are_spread_evenly_to_midnight() -> None:
    budget = CallBudget(per_minute=5, per_day=4)
    budget.record(at(0))  # 3 left: (36,000 - 0) / 4 = 9,000 s apart
    assert budget.next_call_at(at(0)) == at(9000)
    budget.record(at(9000))  # 2 left: 27,000 / 3 = 9,000
    assert budget.next_call_at(at(9000)) == at(18000)


def test_min_spacing_wins_when_the_budget_is_large() -> None:
    budget = CallBudget(per_minute=600, per_day=1_000_000, min_spacing=30)
    budget.record(at(0))
    assert budget.next_call_at(at(0)) == at(30)


def test_spent_or_exhausted_budget_waits_for_midnight_then_resets() -> None:
    budget = CallBudget(per_minute=5, per_day=1)
    budget.record(at(0))
    assert budget.remaining_today(at(1)) == 0
    assert budget.next_call_at(at(1), urgent=True) == at(36000)
    assert budget.remaining_today(at(36000)) == 1
    other = CallBudget(per_minute=5, per_day=25)
    other.exhaust(at(5))
    assert other.figures(at(5))["remaining_calls_today"] == 0
    assert other.next_call_at(at(5)) == at(36000)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        CallBudget(0, 25)
