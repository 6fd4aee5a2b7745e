"""A call budget: how many API calls remain, and when the next one may go.

Two limits apply at once (Alpha Vantage free tier: 5 a minute, 25 a day):

- **per minute**: at most `per_minute` calls in any 60-second span, so consecutive calls are at
  least `60 / per_minute` seconds apart (12 s at 5 a minute);
- **per day**: at most `per_day` calls per UTC day. The day's calls are spread over what is
  left of it: after a call at `t` with `r` calls remaining, the next routine call waits until
  `t + (midnight - t) / (r + 1)`, so the `r` calls land evenly before midnight. 20 calls left
  after a call at 14:00 UTC go every 10 h / 21 = 28 min 34 s, and the budget lasts the day
  instead of the first minutes.

Urgent calls (the warm start) skip the spreading but never the per-minute limit. When the day's
calls are spent, or the API says so (`exhaust`), the next call waits for the next UTC midnight.
The budget counts the calls of this process only; it cannot see calls made elsewhere with the
same key, which is why a rate-limit body from the API also ends the day (`exhaust`).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, time, timedelta

MINUTE = timedelta(minutes=1)


def next_midnight(now: datetime) -> datetime:
    """The start of the next UTC day after `now`."""
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), UTC)


class CallBudget:
    def __init__(self, per_minute: int, per_day: int, min_spacing: float = 0.0) -> None:
        if per_minute < 1 or per_day < 1:
            raise ValueError("per_minute and per_day must be at least 1")
        self.per_minute = per_minute
        self.per_day = per_day
        self.min_spacing = timedelta(seconds=max(min_spacing, 60.0 / per_minute))
        self._recent: deque[datetime] = deque()
        self._day: datetime | None = None  # midnight that ends the counted day
        self._used = 0
        self._last: datetime | None = None

    def _roll(self, now: datetime) -> None:
        if self._day is None or now >= self._day:
            self._day = next_midnight(now)
            self._used = 0
        while self._recent and now - self._recent[0] >= MINUTE:
            self._recent.popleft()

    def remaining_today(self, now: datetime) -> int:
        self._roll(now)
        return max(self.per_day - self._used, 0)

    def record(self, now: datetime) -> None:
        """Count one call made at `now` (every HTTP request, retries included)."""
        self._roll(now)
        self._used += 1
        self._recent.append(now)
        self._last = now

    def exhaust(self, now: datetime) -> None:
        """The API says the day's calls are spent: make no more calls until midnight."""
        self._roll(now)
        self._used = self.per_day

    def next_call_at(self, now: datetime, urgent: bool = False) -> datetime:
        """The earliest moment the next call may go, never before `now`."""
        self._roll(now)
        assert self._day is not None
        remaining = self.per_day - self._used
        if remaining <= 0:
            return self._day
        at = now
        if len(self._recent) >= self.per_minute:
            at = max(at, self._recent[-self.per_minute] + MINUTE)
        if self._last is not None:
            gap = self.min_spacing
            if not urgent:
                gap = max(gap, (self._day - self._last) / (remaining + 1))
            at = max(at, self._last + gap)
        return min(at, self._day)

    def figures(self, now: datetime) -> dict[str, object]:
        """What health and the status line show."""
        return {
            "remaining_calls_today": self.remaining_today(now),
            "calls_per_day": self.per_day,
            "budget_resets_at": (self._day or next_midnight(now)).isoformat(),
        }
