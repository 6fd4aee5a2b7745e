"""The wall clock, in one place.

Everything that needs "now" (the processor's skew check, alert timestamps, the web API, the
Spark job) takes a `clock` callable defaulting to `utc_now`, so tests pass a fixed clock instead
of sleeping or patching. The result is always timezone-aware UTC (DESIGN: a naive datetime never
crosses a module boundary).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
