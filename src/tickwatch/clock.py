"""The wall clock, and exact conversions between aware datetimes and epoch microseconds.

Everything that needs "now" (the processor's skew check, alert timestamps, the web API, the
Spark job) takes a `clock` callable defaulting to `utc_now`, so tests pass a fixed clock instead
of sleeping or patching. The result is always timezone-aware UTC (DESIGN: a naive datetime never
crosses a module boundary). Columns of times (the engine, the lake, Spark) are integer
microseconds since the epoch: `micros` and `from_micros` convert without rounding.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tickwatch.model import EPOCH

_US = timedelta(microseconds=1)


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def micros(moment: datetime) -> int:
    """Microseconds since the epoch, exact."""
    return (moment - EPOCH) // _US


def from_micros(value: int) -> datetime:
    """The aware UTC datetime `value` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=value)
